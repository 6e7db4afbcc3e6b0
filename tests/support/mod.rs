//! The end-to-end test harness: it builds the project's binaries, starts
//! them as real processes on free loopback ports (stopping them again when
//! a test ends, also when it fails), and reads the published Parquet back
//! with DataFusion.

pub mod arrivals;
pub mod cluster;
pub mod expect;
pub mod http;
pub mod tables;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// The repository's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The 71-song workspace subset of the real input, shipped as a fixture
/// (`tests/fixtures/udacity-workspace/`, provenance beside it).
pub fn workspace_input() -> PathBuf {
    workspace_root().join("tests/fixtures/udacity-workspace")
}

/// A copy of the real Sparkify input in `../shared/data/` (never in the
/// repository): the tests that use it are `#[ignore]`d, saying so, and CI
/// runs them.
pub fn shared_data(name: &str) -> PathBuf {
    let path = workspace_root().join("../shared/data").join(name);
    path.canonicalize()
        .unwrap_or_else(|e| panic!("shared data {} is missing: {e}", path.display()))
}

/// The Parquet data files under `dir`, at any depth, leaving out Delta
/// logs' checkpoints; none when `dir` does not exist.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|entry| entry.file_name() != "_delta_log")
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

/// The path of one of the project's binaries, built (once per test process)
/// with the same cargo and target folder as the tests.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary sits in <target>/<profile>/deps")
            .to_path_buf();
        // The binaries go where this test binary is, whatever the caller's
        // environment says. Only the variables a user's shell would have
        // pass through: cargo sets others for test processes, and build
        // scripts that watch them would make this build and the next
        // `cargo test` rebuild the dependencies in turn.
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let kept = [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "RUSTUP_AUTO_INSTALL",
        ];
        let status = Command::new(env!("CARGO"))
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| kept.contains(&k.as_str())))
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        profile_dir
    });
    dir.join(name)
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` different ports nothing listens on right now, none of them handed
/// out before by this test process. Tests run in parallel threads, and the
/// system may give a port released by one test to the next that asks: two
/// tests' servers would then share a port, one of them talking to the
/// other's (moto answering a bucket request with a 500 showed it). Every
/// listener stays open until `N` new ports are found, so the system offers
/// each port at most once while searching.
pub fn free_ports<const N: usize>() -> [u16; N] {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::with_capacity(N);
    while ports.len() < N {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("a bound port").port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        held.push(listener);
    }
    ports.try_into().expect("N ports")
}

/// How long one `submit` run may take in a test. Runs take seconds; one
/// still going after this has hung, and failing that test with the run's
/// output and thread stacks beats a CI job that stops with nothing to show.
const SUBMIT_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `submit` to completion, failing the test if it outlives
/// [`SUBMIT_DEADLINE`].
pub fn submit(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    SubmitRun::start(args, env, cwd).wait(SUBMIT_DEADLINE, "it started")
}

/// Starts `submit` in the background, for a test that stops it with
/// [`interrupt`] or waits for it with [`ended_within`].
pub fn spawn_submit(args: &[&str], env: &[(&str, &str)]) -> SubmitRun {
    SubmitRun::start(args, env, &workspace_root())
}

/// A `submit --quiet` run. Its output goes to files, not pipes: a run that
/// writes more than a pipe holds would otherwise block while the test waits
/// for it.
pub struct SubmitRun {
    child: Child,
    args: Vec<String>,
    stdout: File,
    stderr: File,
}

impl SubmitRun {
    /// `submit --quiet` with `args` and `env` added, in `cwd`, reading nothing.
    fn start(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Self {
        let (stdout, stderr) = (output_file(), output_file());
        let child = Command::new(binary("submit"))
            .args(args)
            .args(["--quiet"])
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().expect("stdout file"))
            .stderr(stderr.try_clone().expect("stderr file"))
            .spawn()
            .expect("submit starts");
        let args = args.iter().map(|a| a.to_string()).collect();
        Self {
            child,
            args,
            stdout,
            stderr,
        }
    }

    /// How the run ended, and its output. One still going `limit` after
    /// `event` has hung: it is killed and the test fails with its output
    /// and the stacks of its threads, which beats a CI job that stops with
    /// nothing to show.
    fn wait(mut self, limit: Duration, event: &str) -> Output {
        let status = self.child.wait_timeout(limit).expect("waiting for submit");
        let Some(status) = status else {
            let stacks = thread_stacks(self.child.id());
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "submit {:?} still running {limit:?} after {event}\nstdout:\n{}\nstderr:\n{}\nthreads:\n{stacks}",
                self.args,
                read_all(self.stdout),
                read_all(self.stderr)
            );
        };
        Output {
            status,
            stdout: read_all(self.stdout).into_bytes(),
            stderr: read_all(self.stderr).into_bytes(),
        }
    }
}

/// Sends SIGINT (Ctrl-C) to a run from [`spawn_submit`] once it catches
/// it; returns how the run ended and its stderr. Fails the test if the run
/// is still going 30 s later.
pub fn interrupt(run: SubmitRun) -> (ExitStatus, String) {
    let pid = run.child.id();
    wait_until_catching(pid, libc::SIGINT);
    // SAFETY: kill takes integers only; `pid` is our child, not yet reaped.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    assert_eq!(
        sent,
        0,
        "SIGINT to submit: {}",
        std::io::Error::last_os_error()
    );
    ended_within(run, Duration::from_secs(30), "SIGINT")
}

/// How a run from [`spawn_submit`] ended, and its stderr; fails the test if
/// it is still going `limit` after `event`.
pub fn ended_within(run: SubmitRun, limit: Duration, event: &str) -> (ExitStatus, String) {
    let output = run.wait(limit, event);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status, stderr)
}

/// Waits until process `pid` catches signal `number` (its `SigCgt` mask in
/// `/proc`), so that a signal sent next reaches its handler and not the
/// default action. Fails the test after 30 s.
fn wait_until_catching(pid: u32, number: libc::c_int) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let catches = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (number - 1)) != 0)
    };
    while !catches() {
        assert!(
            Instant::now() < deadline,
            "process {pid} does not catch signal {number} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An anonymous temporary file for a child's output.
fn output_file() -> File {
    tempfile::tempfile().expect("a temporary file for submit's output")
}

/// What was written to `file`, from its start.
fn read_all(mut file: File) -> String {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))
        .expect("rewinding an output file");
    file.read_to_string(&mut text)
        .expect("reading an output file");
    text
}

/// Every thread's stack in process `pid`, from gdb (given two minutes), to
/// show where a hung run waits; a line saying why when gdb cannot tell.
fn thread_stacks(pid: u32) -> String {
    let pid = pid.to_string();
    match Command::new("timeout")
        .args([
            "120",
            "gdb",
            "-p",
            &pid,
            "-batch",
            "-nx",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("(no stacks: `timeout 120 gdb` did not start: {e})"),
    }
}

/// Runs `submit` in-process from `input` to `output` (plus `extra`
/// arguments) and asserts that it published.
pub fn run_locally(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--input",
        input.to_str().expect("UTF-8 path"),
        "--output",
        output.to_str().expect("UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    let result = submit(&args, &[], &workspace_root());
    assert_success(&result);
    result
}

/// Asserts that a `submit` run succeeded, showing its output if not.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "submit failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A background process of the test, killed when dropped.
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with its output going to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("log file");
        let child = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, failing with the log if the process
    /// exits or `timeout` passes first.
    pub fn wait_until(&mut self, timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not {what} after {timeout:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

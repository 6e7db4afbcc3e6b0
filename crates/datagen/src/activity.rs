//! User activity: sessions of events, one NDJSON log file per day.
//!
//! Users and songs are drawn with Zipf-like popularity. A configurable share
//! of song plays names a catalog song exactly (title, artist name, duration);
//! the rest name songs outside the catalog, as most plays in the real logs do.
//! Some sessions are logged out (empty userId, never NextSong), and users
//! move between free and paid now and then.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use serde_json::{Value, json};

use crate::catalog::{Catalog, pick, rng_for, round};
use crate::words::{FIRST_NAMES, LAST_NAMES, OTHER_PAGES, PLACES, TITLE_WORDS, USER_AGENTS};

const DAY_STREAM: u64 = 3;
const USER_STREAM: u64 = 4;

/// What the logs cover and how they behave.
#[derive(Clone, Copy, Debug)]
pub struct Activity {
    pub seed: u64,
    pub events: u64,
    pub users: u64,
    pub first_day: NaiveDate,
    pub days: u64,
    /// Share of NextSong events that name a catalog song exactly.
    pub match_share: f64,
}

/// A listener's fixed attributes.
struct User {
    id: u64,
    first_name: &'static str,
    last_name: &'static str,
    gender: &'static str,
    location: &'static str,
    user_agent: &'static str,
    registration: f64,
    paid: bool,
}

impl Activity {
    fn user(&self, index: u64) -> User {
        let mut rng = rng_for(self.seed, USER_STREAM, index);
        User {
            id: index + 2,
            first_name: pick(&mut rng, FIRST_NAMES),
            last_name: pick(&mut rng, LAST_NAMES),
            gender: if rng.random_bool(0.5) { "F" } else { "M" },
            location: pick(&mut rng, PLACES),
            user_agent: pick(&mut rng, USER_AGENTS),
            registration: (1_540_000_000_000u64 + rng.random_range(0..10_000_000_000u64)) as f64,
            paid: rng.random_bool(0.25),
        }
    }

    /// The log file of day `day` (0-based): its path under `log_data/` and its lines.
    pub fn day_log(&self, catalog: &Catalog, day: u64) -> (String, String) {
        let date = self.first_day + Duration::days(day as i64);
        let path = format!(
            "{}/{}-events.json",
            date.format("%Y/%m"),
            date.format("%Y-%m-%d")
        );
        let mut rng = rng_for(self.seed, DAY_STREAM, day);
        let per_day = self.events / self.days + u64::from(day < self.events % self.days);
        let day_start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"));
        let mut lines = String::new();
        let mut written = 0;
        let users = Zipf::new(self.users as f64, 1.05).expect("valid zipf");
        let songs = Zipf::new(catalog.songs.max(1) as f64, 1.1).expect("valid zipf");
        while written < per_day {
            let session_id = day * 100_000 + rng.random_range(0..100_000);
            let length = rng.random_range(1..=40).min(per_day - written);
            let mut ts = day_start.timestamp_millis() as u64 + rng.random_range(0..86_000_000);
            let logged_out = rng.random_bool(0.035);
            let mut user = self.user(users.sample(&mut rng) as u64 - 1);
            if rng.random_bool(0.05) {
                user.paid = !user.paid;
            }
            for item in 0..length {
                let event = if logged_out {
                    logged_out_event(&mut rng, session_id, item, ts)
                } else {
                    self.user_event(&mut rng, catalog, &songs, &user, session_id, item, ts)
                };
                lines.push_str(&event.to_string());
                lines.push('\n');
                ts += rng.random_range(1_000..300_000);
            }
            written += length;
        }
        (path, lines)
    }

    #[allow(clippy::too_many_arguments)]
    fn user_event(
        &self,
        rng: &mut StdRng,
        catalog: &Catalog,
        songs: &Zipf<f64>,
        user: &User,
        session_id: u64,
        item: u64,
        ts: u64,
    ) -> Value {
        let next_song = rng.random_bool(0.82);
        let (artist, song, length) = if next_song {
            self.played_song(rng, catalog, songs)
        } else {
            (Value::Null, Value::Null, Value::Null)
        };
        json!({
            "artist": artist,
            "auth": "Logged In",
            "firstName": user.first_name,
            "gender": user.gender,
            "itemInSession": item,
            "lastName": user.last_name,
            "length": length,
            "level": if user.paid { "paid" } else { "free" },
            "location": user.location,
            "method": if next_song { "PUT" } else { "GET" },
            "page": if next_song { "NextSong" } else { pick(rng, OTHER_PAGES) },
            "registration": user.registration,
            "sessionId": session_id,
            "song": song,
            "status": 200,
            "ts": ts,
            "userAgent": user.user_agent,
            "userId": user.id.to_string(),
        })
    }

    /// A catalog song (exactly) or one from outside the catalog.
    fn played_song(
        &self,
        rng: &mut StdRng,
        catalog: &Catalog,
        songs: &Zipf<f64>,
    ) -> (Value, Value, Value) {
        if catalog.songs > 0 && rng.random_bool(self.match_share) {
            let song = catalog.song(songs.sample(rng) as u64 - 1);
            let artist = catalog.artist(song.artist as u64);
            let title = match &song.title {
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            };
            return (json!(artist.name), title, json!(song.duration));
        }
        let title = format!("{} {}", pick(rng, TITLE_WORDS), pick(rng, TITLE_WORDS));
        let artist = format!("{} {}", pick(rng, LAST_NAMES), pick(rng, TITLE_WORDS));
        (
            json!(artist),
            json!(title),
            json!(round(rng.random_range(60.0..500.0), 5)),
        )
    }
}

fn logged_out_event(rng: &mut StdRng, session_id: u64, item: u64, ts: u64) -> Value {
    json!({
        "artist": null, "auth": "Logged Out", "firstName": null, "gender": null,
        "itemInSession": item, "lastName": null, "length": null, "level": "free",
        "location": null, "method": "GET", "page": pick(rng, &["Home", "Login", "About", "Help"]),
        "registration": null, "sessionId": session_id, "song": null, "status": 200, "ts": ts,
        "userAgent": null, "userId": "",
    })
}

//! The song catalog: artists and their songs, each derived from the seed and
//! its own index only, so any slice of a catalog can be generated alone.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::words::{ARTIST_PLACES, ARTIST_WORDS, TITLE_WORDS};

/// A random generator for item `index` of stream `stream`.
pub fn rng_for(seed: u64, stream: u64, index: u64) -> StdRng {
    let mixed = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    StdRng::seed_from_u64(mixed)
}

const SONG_STREAM: u64 = 1;
const ARTIST_STREAM: u64 = 2;

#[derive(Clone, Debug)]
pub struct Artist {
    pub artist_id: String,
    pub name: String,
    pub location: Value,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct Song {
    pub track_id: String,
    pub song_id: String,
    /// A string, or now and then a JSON number (a song titled `66`), as in the real data.
    pub title: Value,
    pub artist: usize,
    pub year: i64,
    pub duration: f64,
}

/// The shape of a catalog: how many songs, by how many artists.
#[derive(Clone, Copy, Debug)]
pub struct Catalog {
    pub seed: u64,
    pub songs: u64,
    pub artists: u64,
}

impl Catalog {
    /// About three songs for every two artists, as in the Million Song subset.
    pub fn new(seed: u64, songs: u64) -> Self {
        Self {
            seed,
            songs,
            artists: (songs * 2 / 3).max(1),
        }
    }

    pub fn artist(&self, index: u64) -> Artist {
        let mut rng = rng_for(self.seed, ARTIST_STREAM, index);
        let words = rng.random_range(1..=3);
        let name = (0..words)
            .map(|_| pick(&mut rng, ARTIST_WORDS))
            .collect::<Vec<_>>()
            .join(" ");
        let located = rng.random_bool(0.35);
        let location = match rng.random_range(0..100) {
            0 => Value::Null,
            1 => json!(rng.random_range(1..999)),
            _ => json!(pick(&mut rng, ARTIST_PLACES)),
        };
        Artist {
            artist_id: format!("AR{}", code(&mut rng, 16)),
            name: if rng.random_bool(0.002) {
                rng.random_range(1..200).to_string()
            } else {
                name
            },
            location,
            latitude: located.then(|| round(rng.random_range(-60.0..70.0), 5)),
            longitude: located.then(|| round(rng.random_range(-150.0..150.0), 5)),
        }
    }

    pub fn song(&self, index: u64) -> Song {
        let mut rng = rng_for(self.seed, SONG_STREAM, index);
        let words = rng.random_range(1..=4);
        let title = (0..words)
            .map(|_| capitalise(pick(&mut rng, TITLE_WORDS)))
            .collect::<Vec<_>>()
            .join(" ");
        let title = match rng.random_range(0..1000) {
            0 => json!(rng.random_range(1..100)),
            1 => json!(round(rng.random_range(1.0..10.0), 1)),
            _ => json!(format!("{title} {index}")),
        };
        Song {
            track_id: format!("TR{}{}", letters(&mut rng, 3), code(&mut rng, 13)),
            song_id: format!("SO{}", code(&mut rng, 16)),
            title,
            artist: rng.random_range(0..self.artists) as usize,
            year: if rng.random_bool(1.0 / 3.0) {
                0
            } else {
                rng.random_range(1955..=2010)
            },
            duration: round(rng.random_range(45.0..600.0), 5),
        }
    }

    /// The song file's JSON, compact with sorted keys like the S3 copy.
    pub fn song_json(&self, song: &Song) -> String {
        let artist = self.artist(song.artist as u64);
        json!({
            "artist_id": artist.artist_id,
            "artist_latitude": artist.latitude,
            "artist_location": artist.location,
            "artist_longitude": artist.longitude,
            "artist_name": artist.name,
            "duration": song.duration,
            "num_songs": 1,
            "song_id": song.song_id,
            "title": song.title,
            "year": song.year,
        })
        .to_string()
    }
}

pub fn pick<'a>(rng: &mut StdRng, words: &[&'a str]) -> &'a str {
    words[rng.random_range(0..words.len())]
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// Upper-case letters only: the three after `TR` name the song's folders.
fn letters(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| rng.random_range(b'A'..=b'Z') as char)
        .collect()
}

fn code(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

//! Word lists the generated names and titles are made of.

pub const TITLE_WORDS: &[&str] = &[
    "love", "night", "heart", "blue", "rain", "fire", "dream", "road", "home", "light", "dance",
    "river", "summer", "shadow", "gold", "city", "song", "ghost", "ocean", "star", "wild",
    "silver", "tears", "morning", "stone", "electric", "paper", "velvet", "thunder", "angel",
    "desert", "highway", "midnight", "sugar", "winter", "broken", "secret", "holy", "lonely",
    "crazy", "sweet", "little", "northern", "golden", "burning", "falling",
];

pub const FIRST_NAMES: &[&str] = &[
    "Lily", "Jacob", "Kate", "Chloe", "Aleena", "Tegan", "Ryan", "Jayden", "Mohammad", "Sara",
    "Layla", "Kevin", "Cienna", "Jordan", "Rylan", "Ava", "Matthew", "Sienna", "Harper", "Connar",
    "Emily", "Lucas", "Mia", "Noah",
];

pub const LAST_NAMES: &[&str] = &[
    "Koch",
    "Klein",
    "Harrell",
    "Cuevas",
    "Kirby",
    "Levine",
    "Smith",
    "Taylor",
    "Rodriguez",
    "Johnson",
    "Moreno",
    "Cruz",
    "Freeman",
    "George",
    "Lopez",
    "Owens",
    "Hunt",
    "Williams",
    "Brown",
    "Garcia",
    "Lee",
    "Walker",
];

pub const ARTIST_WORDS: &[&str] = &[
    "The",
    "Kings",
    "Velvet",
    "Orchestra",
    "Elena",
    "Trio",
    "Brothers",
    "Electric",
    "Sound",
    "System",
    "Soul",
    "Band",
    "Quartet",
    "Project",
    "Collective",
    "Young",
    "Old",
    "Black",
    "White",
    "Crystal",
    "Machine",
    "Lions",
];

pub const PLACES: &[&str] = &[
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "San Francisco-Oakland-Hayward, CA",
    "Atlanta-Sandy Springs-Roswell, GA",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Lansing-East Lansing, MI",
    "Portland-South Portland, ME",
    "Houston-The Woodlands-Sugar Land, TX",
    "Seattle-Tacoma-Bellevue, WA",
    "Tampa-St. Petersburg-Clearwater, FL",
];

pub const ARTIST_PLACES: &[&str] = &[
    "Hamtramck, MI",
    "London, England",
    "Detroit, MI",
    "Dubai UAE",
    "Brooklyn, NY",
    "Stockholm, Sweden",
    "Kingston, Jamaica",
    "Paris, France",
    "Nashville, TN",
    "Berlin, Germany",
    "Lagos, Nigeria",
    "",
];

pub const USER_AGENTS: &[&str] = &[
    "\"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36\"",
    "\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.125 Safari/537.36\"",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "\"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53\"",
];

/// Pages other than NextSong, roughly as often as the real logs show them.
pub const OTHER_PAGES: &[&str] = &[
    "Home",
    "Home",
    "Home",
    "Thumbs Up",
    "Thumbs Up",
    "Add to Playlist",
    "Logout",
    "Add Friend",
    "Thumbs Down",
    "Settings",
    "Help",
    "About",
    "Upgrade",
    "Downgrade",
    "Error",
    "Save Settings",
    "Submit Upgrade",
];

"""Vocabularies of the synthetic audio/video world: genres, moods, themes, words.

Titles and descriptions are built from these words so that a text encoder can
read an item's genre, mood and themes from its metadata, as it could from a
real catalog.
"""

MODALITY_GENRES = {
    "film": ("drama", "comedy", "thriller", "sci-fi", "horror", "romance", "crime", "documentary",
             "animation", "action", "family"),
    "series_episode": ("drama", "comedy", "thriller", "sci-fi", "crime", "documentary", "animation",
                       "family", "romance", "fantasy"),
    "short_video": ("comedy", "cooking", "gaming", "travel", "sports", "diy", "dance", "pets", "science"),
    "music_track": ("pop", "rock", "jazz", "electronic", "hip-hop", "classical", "folk", "ambient", "latin"),
    "podcast_episode": ("crime", "science", "history", "business", "sports", "health", "comedy",
                        "technology"),
}
# Share of the catalog per modality, and roughly how many items one creator makes.
MODALITY_SHARE = {"film": 0.10, "series_episode": 0.22, "short_video": 0.22, "music_track": 0.30,
                  "podcast_episode": 0.16}
ITEMS_PER_CREATOR = {"film": 3, "series_episode": 24, "short_video": 20, "music_track": 12,
                     "podcast_episode": 30}
DURATION_RANGE_S = {"film": (80 * 60, 150 * 60), "series_episode": (20 * 60, 60 * 60),
                    "short_video": (15, 180), "music_track": (120, 360), "podcast_episode": (20 * 60, 90 * 60)}

MOODS = ("upbeat", "melancholic", "tense", "relaxing", "dark", "romantic", "funny", "inspiring",
         "epic", "nostalgic", "dreamy", "energetic")

GENRE_MOODS = {
    "drama": ("melancholic", "inspiring", "nostalgic", "dark"),
    "comedy": ("funny", "upbeat", "energetic"),
    "thriller": ("tense", "dark", "epic"),
    "sci-fi": ("epic", "dreamy", "tense", "dark"),
    "horror": ("dark", "tense"),
    "romance": ("romantic", "dreamy", "melancholic", "upbeat"),
    "crime": ("dark", "tense", "melancholic"),
    "documentary": ("inspiring", "nostalgic", "relaxing"),
    "animation": ("funny", "upbeat", "dreamy", "epic"),
    "action": ("epic", "energetic", "tense"),
    "family": ("upbeat", "funny", "inspiring"),
    "fantasy": ("epic", "dreamy", "dark"),
    "cooking": ("relaxing", "upbeat", "funny"),
    "gaming": ("energetic", "funny", "epic"),
    "travel": ("inspiring", "relaxing", "dreamy"),
    "sports": ("energetic", "epic", "inspiring"),
    "diy": ("relaxing", "inspiring", "upbeat"),
    "dance": ("energetic", "upbeat", "funny"),
    "pets": ("funny", "upbeat", "relaxing"),
    "science": ("inspiring", "dreamy", "relaxing"),
    "pop": ("upbeat", "romantic", "energetic", "melancholic"),
    "rock": ("energetic", "dark", "epic", "nostalgic"),
    "jazz": ("relaxing", "nostalgic", "romantic", "dreamy"),
    "electronic": ("energetic", "dreamy", "dark", "upbeat"),
    "hip-hop": ("energetic", "dark", "upbeat"),
    "classical": ("relaxing", "epic", "melancholic", "dreamy"),
    "folk": ("nostalgic", "melancholic", "relaxing"),
    "ambient": ("relaxing", "dreamy", "melancholic"),
    "latin": ("upbeat", "romantic", "energetic"),
    "history": ("nostalgic", "epic", "inspiring"),
    "business": ("inspiring", "energetic"),
    "health": ("relaxing", "inspiring", "upbeat"),
    "technology": ("inspiring", "energetic", "dreamy"),
}

GENRE_THEMES = {
    "drama": ("family secrets", "coming of age", "small town", "second chances", "war veterans", "grief"),
    "comedy": ("office life", "road trip", "wedding chaos", "roommates", "stand-up", "parody"),
    "thriller": ("conspiracy", "kidnapping", "hackers", "espionage", "revenge", "amnesia"),
    "sci-fi": ("space travel", "robots", "time travel", "dystopia", "aliens", "artificial intelligence"),
    "horror": ("haunted house", "zombies", "cursed objects", "slasher", "demons", "isolation"),
    "romance": ("first love", "long distance", "summer fling", "rivals to lovers", "letters", "paris"),
    "crime": ("detectives", "heist", "mafia", "courtroom", "serial killers", "cold cases"),
    "documentary": ("nature", "wildlife", "history", "biography", "climate", "music history"),
    "animation": ("talking animals", "magic", "superheroes", "friendship", "dragons", "toys"),
    "action": ("car chases", "martial arts", "special forces", "explosions", "bounty hunters", "survival"),
    "family": ("holidays", "siblings", "pets", "school", "adventure", "grandparents"),
    "fantasy": ("dragons", "kingdoms", "wizards", "quests", "elves", "prophecy"),
    "cooking": ("baking", "street food", "vegan", "barbecue", "desserts", "quick meals"),
    "gaming": ("speedruns", "esports", "retro games", "walkthroughs", "minecraft builds", "reviews"),
    "travel": ("backpacking", "islands", "city guides", "mountains", "train journeys", "food markets"),
    "sports": ("football", "basketball", "running", "tennis", "highlights", "training"),
    "diy": ("woodworking", "home repair", "crafts", "gardening", "upcycling", "electronics"),
    "dance": ("choreography", "hip-hop dance", "ballet", "dance challenge", "salsa", "tutorials"),
    "pets": ("cats", "dogs", "parrots", "rescue animals", "pet tricks", "puppies"),
    "science": ("physics", "space", "biology", "experiments", "chemistry", "the brain"),
    "pop": ("summer hits", "heartbreak", "dance floor", "love songs", "anthems", "acoustic"),
    "rock": ("guitar solos", "live", "indie", "punk", "classic rock", "ballads"),
    "jazz": ("bebop", "piano trio", "smooth jazz", "big band", "late night", "saxophone"),
    "electronic": ("house", "techno", "synthwave", "drum and bass", "chillout", "remix"),
    "hip-hop": ("boom bap", "trap", "freestyle", "storytelling", "old school", "street"),
    "classical": ("symphony", "piano", "strings", "opera", "baroque", "film score"),
    "folk": ("acoustic guitar", "storytelling", "banjo", "campfire", "harmonies", "countryside"),
    "ambient": ("sleep", "focus", "rain sounds", "meditation", "drones", "nature sounds"),
    "latin": ("reggaeton", "salsa", "bachata", "cumbia", "bossa nova", "tango"),
    "history": ("ancient rome", "world war", "empires", "revolutions", "explorers", "medieval life"),
    "business": ("startups", "investing", "leadership", "marketing", "economics", "careers"),
    "health": ("sleep", "nutrition", "fitness", "mental health", "mindfulness", "running"),
    "technology": ("artificial intelligence", "gadgets", "cybersecurity", "open source", "space tech",
                   "programming"),
}

TITLE_ADJECTIVES = {
    "upbeat": ("Bright", "Golden", "Sunny", "Happy"), "melancholic": ("Lonely", "Fading", "Quiet", "Lost"),
    "tense": ("Broken", "Silent", "Final", "Hidden"), "relaxing": ("Gentle", "Slow", "Soft", "Calm"),
    "dark": ("Hollow", "Black", "Cold", "Wicked"), "romantic": ("Tender", "Sweet", "Secret", "Crimson"),
    "funny": ("Crazy", "Silly", "Wild", "Awkward"), "inspiring": ("Rising", "Brave", "Endless", "True"),
    "epic": ("Iron", "Great", "Burning", "Last"), "nostalgic": ("Old", "Faded", "Distant", "Forgotten"),
    "dreamy": ("Floating", "Velvet", "Neon", "Starlit"), "energetic": ("Electric", "Fast", "Loud", "Rapid"),
}
TITLE_NOUNS = ("Harbor", "Echoes", "Road", "Garden", "Signal", "Winter", "River", "Horizon", "Mirror",
               "Kingdom", "Night", "Letters", "Station", "Island", "Circuit", "Storm", "Orchard",
               "Lantern", "Frontier", "Tide", "Canyon", "Avenue", "Hearts", "Shadows", "Summer")
NAME_FIRST = ("Nora", "Leo", "Maya", "Ivan", "Sofia", "Kenji", "Amara", "Lucas", "Priya", "Omar",
              "Elena", "Jonas", "Aiko", "Mateo", "Zara", "Felix", "Ines", "Ravi", "Chloe", "Diego")
NAME_LAST = ("Vale", "Moreno", "Kline", "Sato", "Okafor", "Berg", "Rossi", "Novak", "Haddad", "Lund",
             "Costa", "Ishii", "Mehta", "Dubois", "Weber", "Park", "Silva", "Quinn", "Reyes", "Adler")
GROUP_WORDS = ("Pilots", "Foxes", "Machines", "Orchestra", "Collective", "Kids", "Lights", "Society",
               "Brothers", "Sisters", "Club", "Factory")

LANGUAGES = ("en", "es", "fr", "de", "hi", "ja", "pt", "ko")
LANGUAGE_SHARE = (0.42, 0.15, 0.08, 0.07, 0.09, 0.07, 0.07, 0.05)
LANGUAGE_NAME = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "hi": "Hindi",
                 "ja": "Japanese", "pt": "Portuguese", "ko": "Korean"}

# When people watch or listen to what (rows: hour buckets; columns follow runtime.vocab.MODALITIES).
HOUR_BUCKETS = ((0, 6), (6, 10), (10, 16), (16, 19), (19, 24))
HOUR_MODALITY_FACTOR = (
    (0.8, 1.0, 1.3, 1.2, 0.6),   # night: short clips and music
    (0.2, 0.4, 1.0, 1.6, 2.2),   # morning commute: podcasts and music
    (0.6, 0.8, 1.3, 1.3, 1.2),   # day
    (0.9, 1.0, 1.4, 0.9, 0.8),   # afternoon
    (2.2, 2.0, 0.9, 0.7, 0.5),   # evening: films and series
)
# Rows follow runtime.vocab.DEVICES: phone, tv, tablet, web.
DEVICE_MODALITY_FACTOR = (
    (0.3, 0.6, 1.8, 1.6, 1.6),   # phone
    (2.5, 2.2, 0.3, 0.5, 0.3),   # tv
    (1.0, 1.2, 1.2, 0.8, 0.8),   # tablet
    (1.0, 1.0, 1.0, 1.0, 1.0),   # web
)

# Domains by modality group: the apps a company might run apart (a video app, an audio app).
DOMAIN_OF_MODALITY = {"film": "video", "series_episode": "video", "short_video": "video",
                      "music_track": "audio", "podcast_episode": "audio"}

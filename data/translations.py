"""Spanish for part of the synthetic world's vocabulary (film genres, moods, their themes), so a
film's description can be written in both languages and cross-lingual retrieval measured."""

from __future__ import annotations

from edgerec.data import vocab

GENRES_ES = {"drama": "drama", "comedy": "comedia", "thriller": "suspense", "sci-fi": "ciencia ficción",
             "horror": "terror", "romance": "romance", "crime": "crimen", "documentary": "documental",
             "animation": "animación", "action": "acción", "family": "familiar"}
MOODS_ES = {"upbeat": "alegre", "melancholic": "melancólica", "tense": "tensa", "relaxing": "relajante",
            "dark": "oscura", "romantic": "romántica", "funny": "divertida", "inspiring": "inspiradora",
            "epic": "épica", "nostalgic": "nostálgica", "dreamy": "onírica", "energetic": "enérgica"}
THEMES_ES = {
    "family secrets": "secretos de familia", "coming of age": "hacerse mayor", "small town": "un pueblo pequeño",
    "second chances": "segundas oportunidades", "war veterans": "veteranos de guerra", "grief": "el duelo",
    "office life": "la vida en la oficina", "road trip": "un viaje por carretera", "wedding chaos": "el caos de una boda",
    "roommates": "compañeros de piso", "stand-up": "el monólogo cómico", "parody": "la parodia",
    "conspiracy": "una conspiración", "kidnapping": "un secuestro", "hackers": "piratas informáticos",
    "espionage": "el espionaje", "revenge": "la venganza", "amnesia": "la amnesia",
    "space travel": "viajes espaciales", "robots": "robots", "time travel": "viajes en el tiempo",
    "dystopia": "una distopía", "aliens": "extraterrestres", "artificial intelligence": "la inteligencia artificial",
    "haunted house": "una casa encantada", "zombies": "zombis", "cursed objects": "objetos malditos",
    "slasher": "un asesino con cuchillo", "demons": "demonios", "isolation": "el aislamiento",
    "first love": "el primer amor", "long distance": "un amor a distancia", "summer fling": "un amor de verano",
    "rivals to lovers": "rivales que se enamoran", "letters": "cartas", "paris": "París",
    "detectives": "detectives", "heist": "un gran robo", "mafia": "la mafia", "courtroom": "un juicio",
    "serial killers": "asesinos en serie", "cold cases": "casos sin resolver",
    "nature": "la naturaleza", "wildlife": "la vida salvaje", "history": "la historia", "biography": "una biografía",
    "climate": "el clima", "music history": "la historia de la música",
    "talking animals": "animales que hablan", "magic": "la magia", "superheroes": "superhéroes",
    "friendship": "la amistad", "dragons": "dragones", "toys": "juguetes",
    "car chases": "persecuciones de coches", "martial arts": "artes marciales", "special forces": "fuerzas especiales",
    "explosions": "explosiones", "bounty hunters": "cazarrecompensas", "survival": "la supervivencia",
    "holidays": "las vacaciones", "siblings": "hermanos", "pets": "mascotas", "school": "el colegio",
    "adventure": "la aventura", "grandparents": "los abuelos",
}


def film_description(genre: str, mood: str, theme1: str, theme2: str, language: str) -> str:
    """A film's one-line description in English ("en") or Spanish ("es")."""
    if language == "en":
        article = "An" if mood[0] in "aeiou" else "A"
        return f"{article} {mood} {genre} film about {theme1} and {theme2}."
    if language == "es":
        return (f"Una película de {GENRES_ES[genre]} {MOODS_ES[mood]} sobre {THEMES_ES[theme1]} "
                f"y {THEMES_ES[theme2]}.")
    raise ValueError(f"no film descriptions in {language!r}; use 'en' or 'es'")


FILM_GENRES = vocab.MODALITY_GENRES["film"]

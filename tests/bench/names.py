"""Name material for the synthetic registry: common surnames and given names of the Milan hinterland.

Lists are ordered roughly by frequency (the seed draws surnames with a skew towards the top of the
list, so "Brambilla" and "Colombo" are common, as they are in the Martesana), and include what a
name search has to cope with: accents (Cantù, Niccolò), apostrophes (D'Angelo), two-word surnames
(De Luca) and the surnames and names of the larger foreign communities.
"""

from __future__ import annotations

import unicodedata

SURNAMES: tuple[str, ...] = (
    # Lombardy's most frequent first.
    "Brambilla", "Colombo", "Ferrari", "Rossi", "Bianchi", "Villa", "Galli", "Fontana", "Sala",
    "Riva", "Mariani", "Conti", "Ricci", "Bruno", "Gallo", "Costa", "Giordano", "Mancini", "Rizzo",
    "Lombardi", "Moretti", "Barbieri", "Esposito", "Russo", "Romano", "Greco", "Marino", "Cattaneo",
    "Longhi", "Bernasconi", "Pozzi", "Crippa", "Radaelli", "Galimberti", "Mauri", "Limonta",
    "Perego", "Sironi", "Redaelli", "Meroni", "Vismara", "Viganò", "Cantù", "Locatelli", "Rota",
    "Pirovano", "Cazzaniga", "Colnago", "Arosio", "Beretta", "Confalonieri", "Corbetta", "Frigerio",
    "Motta", "Nava", "Oggioni", "Parravicini", "Ronchi", "Sangalli", "Tagliabue", "Valtorta",
    "Zappa", "Magni", "Spinelli", "Monti", "Fumagalli", "Agostoni", "Airoldi", "Biffi", "Bonfanti",
    "Borghi", "Brivio", "Cereda", "Citterio", "Consonni", "Dell'Orto", "Ferrario", "Gerosa",
    "Giussani", "Invernizzi", "Lissoni", "Maggioni", "Mapelli", "Marelli", "Molteni", "Negri",
    "Pagani", "Panzeri", "Pessina", "Ratti", "Scotti", "Tremolada", "Vergani", "Zanetti",
    # The rest of Italy, as the hinterland's residents came from it.
    "De Luca", "De Angelis", "D'Angelo", "D'Amico", "Di Stefano", "Lo Russo", "La Rosa",
    "Santoro", "Marchetti", "Leone", "Longo", "Gentile", "Martinelli", "Vitale", "Serra",
    "Coppola", "De Santis", "Fabbri", "Ferri", "Bellini", "Basile", "Riccardi", "Grasso",
    "Caruso", "Ferrara", "Fiore", "Sanna", "Pellegrini", "Palumbo", "Rinaldi", "Cirillo",
    "Messina", "Sorrentino", "Testa", "Parisi", "Amato", "Silvestri", "Mazza", "Cristiani",
    "Farina", "Orlando", "Piras", "Mele", "Guerra", "Rizzi", "Marini", "Benedetti", "Grassi",
    "Pace", "Morelli", "Valentini", "Fiorentino", "Carbone", "Neri", "Monaco", "Bianco",
    "Sartori", "Caputo", "Guidi", "Pirrò", "Lucà", "Parrà", "Fanò", "Mirò", "Nicolò", "Sciacca",
    "Cosentino", "Calabrese", "Napolitano", "Siciliano", "Pugliese", "Mastrangelo", "Dell'Acqua",
    "Del Vecchio", "Della Valle", "Lo Bianco", "Li Causi", "Giuffrè", "Mosè",
    # Foreign communities of the ambito (Morocco, Romania, Albania, Egypt, Peru, Ukraine, China…).
    "El Amrani", "Benali", "El Idrissi", "Bouzid", "Haddad", "Popescu", "Ionescu", "Popa",
    "Dumitru", "Stan", "Hoxha", "Shehu", "Gashi", "Krasniqi", "Mohamed", "Ibrahim", "Hassan",
    "Abdelrahman", "Quispe", "Mamani", "Flores", "Rodríguez", "García", "Mendoza", "Kovalenko",
    "Shevchenko", "Bondarenko", "Chen", "Wang", "Zhang", "Hu", "Singh", "Kaur", "Hossain",
    "Rahman", "Diop", "Ndiaye", "Fall", "Santos", "Reyes",
)  # fmt: skip

FEMALE_NAMES: tuple[str, ...] = (
    "Giulia", "Francesca", "Chiara", "Sara", "Laura", "Valentina", "Alessia", "Martina", "Elena",
    "Federica", "Silvia", "Paola", "Anna", "Maria", "Giovanna", "Roberta", "Cristina", "Barbara",
    "Monica", "Elisa", "Simona", "Daniela", "Claudia", "Stefania", "Alessandra", "Lucia", "Rosa",
    "Teresa", "Angela", "Carla", "Luisa", "Franca", "Giuseppina", "Antonietta", "Carmela",
    "Emanuela", "Manuela", "Patrizia", "Raffaella", "Serena", "Sofia", "Aurora", "Ginevra",
    "Beatrice", "Greta", "Noemi", "Vittoria", "Matilde", "Camilla", "Alice", "Gaia", "Emma",
    "Arianna", "Rebecca", "Ludovica", "Nicole", "Irene", "Marta", "Caterina", "Veronica",
    "Michela", "Ilaria", "Debora", "Erika", "Jessica", "Sabrina", "Tiziana", "Lorena", "Nadia",
    "Rita", "Gabriella", "Graziella", "Ornella", "Pierangela", "Mariangela", "Annamaria",
    "Maria Grazia", "Maria Luisa", "Fatima", "Khadija", "Aicha", "Salma", "Amina", "Ioana",
    "Andreea", "Mihaela", "Elona", "Ermira", "Rosa María", "Yolanda", "Oksana", "Olena",
    "Li Na", "Xiaoling", "Priya", "Fatou", "Aminata", "Mariama", "Zoè", "Noè", "Élise",
)  # fmt: skip

MALE_NAMES: tuple[str, ...] = (
    "Marco", "Andrea", "Luca", "Giuseppe", "Francesco", "Alessandro", "Matteo", "Davide",
    "Stefano", "Paolo", "Roberto", "Giovanni", "Antonio", "Mario", "Luigi", "Massimo", "Fabio",
    "Simone", "Riccardo", "Daniele", "Federico", "Lorenzo", "Gabriele", "Claudio", "Maurizio",
    "Sergio", "Carlo", "Franco", "Bruno", "Giorgio", "Enrico", "Alberto", "Emanuele", "Pietro",
    "Michele", "Salvatore", "Vincenzo", "Angelo", "Domenico", "Raffaele", "Leonardo", "Tommaso",
    "Edoardo", "Mattia", "Filippo", "Diego", "Samuele", "Nicola", "Niccolò", "Nicolò", "Giacomo",
    "Jacopo", "Cristian", "Manuel", "Kevin", "Thomas", "Christian", "Ivan", "Gianluca",
    "Gianni", "Pierluigi", "Giancarlo", "Ernesto", "Umberto", "Ugo", "Renato", "Walter",
    "Valerio", "Ettore", "Achille", "Elia", "Mosè", "Gioele", "Noah", "Giosuè", "Mohamed",
    "Ahmed", "Youssef", "Omar", "Karim", "Abdellah", "Ion", "Andrei", "Mihai", "Constantin",
    "Ardit", "Erion", "Besnik", "Luis", "José", "Juan Carlos", "Jorge", "Taras", "Andriy",
    "Wei", "Jian", "Gurpreet", "Harpreet", "Mamadou", "Ousmane",
)  # fmt: skip

# Where people were born: Belfiore (cadastral) codes, Italian comuni first, then foreign states (Z…).
BIRTH_PLACES: tuple[tuple[str, str], ...] = (
    ("Milano", "F205"),
    ("Melzo", "F119"),
    ("Cassano d'Adda", "C003"),
    ("Gorgonzola", "E094"),
    ("Vaprio d'Adda", "L667"),
    ("Treviglio", "L400"),
    ("Bergamo", "A794"),
    ("Monza", "F704"),
    ("Napoli", "F839"),
    ("Palermo", "G273"),
    ("Bari", "A662"),
    ("Foggia", "D643"),
    ("Reggio Calabria", "H224"),
    ("Roma", "H501"),
    ("Catania", "C351"),
    ("Lecce", "E506"),
    ("Marocco", "Z330"),
    ("Romania", "Z129"),
    ("Albania", "Z100"),
    ("Egitto", "Z336"),
    ("Perù", "Z611"),
    ("Ucraina", "Z138"),
    ("Cina", "Z210"),
    ("India", "Z222"),
    ("Senegal", "Z343"),
    ("Ecuador", "Z605"),
)

STREETS: tuple[str, ...] = (
    "Via Roma", "Via Milano", "Via Dante", "Via Garibaldi", "Via Mazzini", "Via Matteotti",
    "Via Verdi", "Via Manzoni", "Via Cavour", "Via Volta", "Via Marconi", "Via Gramsci",
    "Via San Rocco", "Via Santa Maria", "Via Bergamo", "Via Cassano", "Via Pasubio",
    "Via dei Mille", "Via Leopardi", "Via Carducci", "Piazza Vittorio Emanuele II",
    "Via XXV Aprile", "Via IV Novembre", "Via Martiri della Libertà", "Via Adda",
    "Via Martesana", "Via Colombo", "Via Don Milani", "Via Buonarroti", "Via Pertini",
)  # fmt: skip

_VOWELS = frozenset("AEIOU")


def fold(value: str) -> str:
    """Upper-case ASCII letters only, as in the codice fiscale."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed.upper() if "A" <= c <= "Z")


def surname_code(surname: str) -> str:
    """The three letters of a surname in the codice fiscale: consonants, then vowels, then X."""
    letters = fold(surname)
    consonants = [c for c in letters if c not in _VOWELS]
    vowels = [c for c in letters if c in _VOWELS]
    return ("".join(consonants + vowels) + "XXX")[:3]


def given_name_code(name: str) -> str:
    """The three letters of a given name: with four or more consonants, the 1st, 3rd and 4th."""
    letters = fold(name)
    consonants = [c for c in letters if c not in _VOWELS]
    if len(consonants) >= 4:
        return consonants[0] + consonants[2] + consonants[3]
    vowels = [c for c in letters if c in _VOWELS]
    return ("".join(consonants + vowels) + "XXX")[:3]


# Surnames and names a worker would type with a typo or without accents, for the search scenario.
SEARCH_TERMS: tuple[str, ...] = (
    "Brambila",  # Brambilla, one l
    "colomob",  # Colombo, transposition
    "Ferari Giulia",  # Ferrari, surname then name
    "cantu",  # Cantù, no accent
    "niccolo",  # Niccolò, no accent
    "dangelo",  # D'Angelo, no apostrophe
    "popescu ioana",
    "Galimbert",  # prefix
)

"""Name and place lists for synthetic people: English and Spanish given and family names, streets.

Plain data only. The lists mix common US names so a demo looks familiar; none refer to real people.
"""

from __future__ import annotations

ENGLISH_GIVEN_FEMALE: tuple[str, ...] = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily",
    "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon",
    "Laura", "Cynthia", "Dorothy", "Amy", "Kathleen", "Angela", "Shirley", "Emma", "Brenda",
    "Pamela", "Nicole", "Anna", "Samantha", "Katherine", "Christine", "Debra", "Rachel", "Carolyn",
    "Janet", "Maria", "Olivia", "Heather", "Helen", "Catherine", "Diane", "Julie", "Victoria",
    "Joyce", "Lauren", "Kelly", "Christina", "Ruth", "Joan", "Virginia", "Judith", "Evelyn",
    "Hannah", "Andrea", "Megan", "Cheryl", "Jacqueline", "Madison", "Teresa", "Abigail", "Sophia",
    "Martha", "Sara", "Gloria", "Janice", "Kathryn", "Ann", "Isabella", "Judy", "Charlotte",
    "Julia", "Grace", "Amber", "Alice", "Jean", "Denise", "Frances", "Danielle", "Marilyn",
    "Natalie", "Beverly", "Diana", "Brittany", "Theresa", "Kayla", "Alexis", "Doris", "Lori",
    "Tiffany", "Ava", "Mia", "Harper", "Chloe", "Zoe", "Lily", "Aubrey", "Nora", "Riley", "Layla",
    "Ella", "Scarlett", "Hazel", "Aria",
)  # fmt: skip

ENGLISH_GIVEN_MALE: tuple[str, ...] = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Andrew",
    "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "Timothy", "Ronald", "George", "Jason",
    "Edward", "Jeffrey", "Ryan", "Jacob", "Nicholas", "Gary", "Eric", "Jonathan", "Stephen",
    "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick",
    "Frank", "Raymond", "Jack", "Dennis", "Jerry", "Tyler", "Aaron", "Henry", "Douglas", "Peter",
    "Adam", "Nathan", "Zachary", "Walter", "Kyle", "Harold", "Carl", "Jeremy", "Gerald", "Keith",
    "Roger", "Arthur", "Terry", "Lawrence", "Sean", "Christian", "Ethan", "Austin", "Joe",
    "Albert", "Jesse", "Willie", "Billy", "Bryan", "Bruce", "Noah", "Jordan", "Dylan", "Ralph",
    "Roy", "Alan", "Wayne", "Eugene", "Juan", "Gabriel", "Louis", "Russell", "Randy", "Vincent",
    "Philip", "Logan", "Bobby", "Harry", "Johnny", "Liam", "Mason", "Elijah", "Lucas", "Owen",
    "Caleb", "Wyatt", "Leo",
)  # fmt: skip

ENGLISH_FAMILY: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green",
    "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips",
    "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murphy", "Cook",
    "Rogers", "Morgan", "Peterson", "Cooper", "Reed", "Bailey", "Bell", "Kelly", "Howard", "Ward",
    "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "James", "Hughes", "Price",
    "Sanders", "Myers", "Long", "Ross", "Foster", "Powell", "Jenkins", "Perry", "Russell",
    "Sullivan", "Butler", "Barnes", "Fisher", "Henderson", "Coleman", "Simmons", "Patterson",
    "Jordan", "Reynolds", "Hamilton", "Graham", "Wallace", "Cole", "West", "Stone", "Hayes",
    "Gibson", "Ellis", "Murray", "Ford", "Marshall", "Owens", "Harrison", "Fernandez", "McDonald",
    "Woods", "Washington", "Kennedy", "Wells", "Vaughn", "Shaw", "Holmes", "Rice", "Hunt", "Black",
    "Daniels", "Palmer", "Mills", "Nichols", "Grant", "Knight", "Ferguson", "Hoffman", "Olson",
    "Weber", "Schmidt", "Nguyen", "Tran", "Kim", "Park", "Chen", "Wang", "Patel", "Shah", "Singh",
    "Cohen", "Friedman", "O'Brien", "O'Connor", "Kowalski", "Novak", "Rossi", "Russo", "Bianchi",
    "Larsen", "Hansen", "Johansson", "Dubois", "Moreau",
)  # fmt: skip

SPANISH_GIVEN_FEMALE: tuple[str, ...] = (
    "María", "Guadalupe", "Juana", "Margarita", "Josefina", "Verónica", "Leticia", "Rosa",
    "Teresa", "Alejandra", "Patricia", "Gabriela", "Adriana", "Yolanda", "Sofía", "Valentina",
    "Camila", "Ximena", "Isabella", "Lucía", "Daniela", "Mariana", "Elena", "Carmen", "Ana", "Luz",
    "Esperanza", "Araceli", "Brenda", "Claudia", "Silvia", "Gloria", "Marisol", "Paola", "Natalia",
    "Andrea", "Fernanda", "Jimena", "Renata", "Regina", "Victoria", "Beatriz", "Dolores", "Inés",
    "Lourdes", "Pilar", "Rocío", "Esmeralda",
)  # fmt: skip

SPANISH_GIVEN_MALE: tuple[str, ...] = (
    "José", "Juan", "Luis", "Carlos", "Jesús", "Francisco", "Miguel", "Antonio", "Alejandro",
    "Manuel", "Pedro", "Jorge", "Ricardo", "Roberto", "Fernando", "Javier", "Eduardo", "Sergio",
    "Raúl", "Rafael", "Arturo", "Alberto", "Héctor", "Mario", "Óscar", "Andrés", "Diego", "Mateo",
    "Santiago", "Sebastián", "Emiliano", "Leonardo", "Daniel", "Gabriel", "Ángel", "Julio",
    "Ramón", "Armando", "Rubén", "Enrique", "Hugo", "Iván", "Joaquín", "Tomás", "Guillermo",
    "Gustavo", "Salvador", "Martín", "Adrián", "Nicolás",
)  # fmt: skip

SPANISH_FAMILY: tuple[str, ...] = (
    "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez",
    "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Reyes", "Morales", "Cruz", "Ortiz",
    "Gutiérrez", "Chávez", "Ramos", "Ruiz", "Álvarez", "Mendoza", "Castillo", "Jiménez", "Vásquez",
    "Moreno", "Romero", "Herrera", "Medina", "Aguilar", "Vargas", "Guzmán", "Muñoz", "Castro",
    "Salazar", "Delgado", "Peña", "Ríos", "Navarro", "Domínguez", "Soto", "Contreras", "Figueroa",
    "Luna", "Cabrera", "Campos", "Vega", "Fuentes", "Rosales", "Estrada", "Sandoval", "Acosta",
    "Maldonado", "Ibarra", "Orozco", "Núñez", "Cervantes", "Solís",
)  # fmt: skip

STREET_NAMES: tuple[str, ...] = (
    "Maple", "Oak", "Pine", "Cedar", "Elm", "Birch", "Willow", "Walnut", "Chestnut", "Hickory",
    "Spruce", "Magnolia", "Sycamore", "Main", "Church", "Park", "Washington", "Lincoln",
    "Jefferson", "Madison", "Franklin", "Jackson", "Adams", "Monroe", "Grant", "Highland",
    "Hillcrest", "Lakeview", "Riverside", "Meadow", "Orchard", "Sunset", "Ridge", "Valley",
    "Spring", "Mill", "Forest", "Prospect", "Union", "Liberty", "Center", "Market", "School",
    "Academy", "Bridge", "Canal", "Harbor", "Prairie", "Summit",
)  # fmt: skip

STREET_SUFFIXES = ("St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way", "Pl", "Ter")

UNIT_PREFIXES = ("Apt", "Unit", "Apt", "Apt", "#")

EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

package seed

// The category tree: 10 roots, 4 children each, 4 leaves under each child (210 categories).
// Each leaf carries the singular noun used to name its products. Names mix French and English,
// accents and separators (a comma, an ampersand, a registered sign, a double quote) on purpose.

type leafDef struct {
	name string // category name
	noun string // product noun, e.g. "Casque audio"
}

type midDef struct {
	name   string
	leaves [4]leafDef
}

type rootDef struct {
	name   string
	code   string // SKU prefix
	brands []string
	mids   [4]midDef
}

var taxonomy = [10]rootDef{
	{"Home", "HOM", []string{"Sonora", "Acme", "Bang & Olufsen", "Køben Audio", "Voltix", "Lumière"}, [4]midDef{
		{"Audio", [4]leafDef{{"Headphones", "Casque audio"}, {"Enceintes Bluetooth", "Enceinte Bluetooth"}, {"Barres de son", "Barre de son"}, {"Platines vinyle", "Platine vinyle"}}},
		{"TV & Vidéo", [4]leafDef{{"Téléviseurs", "Téléviseur LED"}, {"Vidéoprojecteurs", "Vidéoprojecteur"}, {"Supports TV", "Support mural TV"}, {"Câbles HDMI", "Câble HDMI 2.1"}}},
		{"Photo & Caméras", [4]leafDef{{"Appareils hybrides", "Appareil photo hybride"}, {"Objectifs", "Objectif"}, {"Trépieds", "Trépied"}, {"Action cams", "Caméra sport"}}},
		{"Domotique", [4]leafDef{{"Ampoules connectées", "Ampoule connectée"}, {"Prises connectées", "Prise connectée"}, {"Thermostats", "Thermostat connecté"}, {"Caméras de surveillance", "Caméra IP"}}},
	}},
	{"Informatique", "INF", []string{"Acme", "TechnoPlus", "Zenwave", "Byteworks", "Nordström Data", "Pixelia"}, [4]midDef{
		{"Ordinateurs portables", [4]leafDef{{"Ultrabooks", "Ultrabook"}, {"PC portables gamer", "PC portable gamer"}, {"Chromebooks", "Chromebook"}, {"Stations de travail", "Station de travail mobile"}}},
		{"Composants", [4]leafDef{{"Cartes graphiques", "Carte graphique"}, {"Processeurs", "Processeur"}, {"Mémoire RAM", "Barrette RAM DDR5"}, {"SSD & disques durs", "SSD NVMe"}}},
		{"Périphériques", [4]leafDef{{"Claviers", "Clavier mécanique"}, {"Souris", "Souris sans fil"}, {"Écrans", "Écran 27\""}, {"Webcams", "Webcam Full HD"}}},
		{"Réseau", [4]leafDef{{"Routeurs Wi-Fi", "Routeur Wi-Fi 6"}, {"Switchs", "Switch Ethernet"}, {"Câbles RJ45", "Câble RJ45 Cat.6"}, {"Répéteurs", "Répéteur Wi-Fi"}}},
	}},
	{"Téléphonie", "TEL", []string{"Acme", "Voltix", "Señor Gadget", "Mobilis", "Orkana", "Zenwave"}, [4]midDef{
		{"Smartphones", [4]leafDef{{"Android", "Smartphone Android"}, {"Reconditionnés", "Smartphone reconditionné"}, {"Téléphones seniors", "Téléphone senior"}, {"Pliables", "Smartphone pliable"}}},
		{"Accessoires téléphone", [4]leafDef{{"Coques", "Coque"}, {"Protections d'écran", "Verre trempé"}, {"Chargeurs", "Chargeur USB-C"}, {"Batteries externes", "Batterie externe"}}},
		{"Wearables", [4]leafDef{{"Montres connectées", "Montre connectée"}, {"Bracelets fitness", "Bracelet fitness"}, {"Écouteurs sans fil", "Écouteurs sans fil"}, {"Traceurs GPS", "Traceur GPS"}}},
		{"Tablettes", [4]leafDef{{"Tablettes Android", "Tablette Android"}, {"Liseuses", "Liseuse"}, {"Tablettes enfants", "Tablette enfant"}, {"Stylets", "Stylet"}}},
	}},
	{"Électroménager", "ELM", []string{"Acme", "Müller & Söhne", "Cuisinor", "Brava", "Électra", "Hygéa"}, [4]midDef{
		{"Cuisine", [4]leafDef{{"Cafetières", "Cafetière"}, {"Robots pâtissiers", "Robot pâtissier"}, {"Friteuses sans huile", "Friteuse sans huile"}, {"Bouilloires", "Bouilloire"}}},
		{"Gros électroménager", [4]leafDef{{"Lave-linge", "Lave-linge"}, {"Réfrigérateurs", "Réfrigérateur"}, {"Lave-vaisselle", "Lave-vaisselle"}, {"Fours", "Four encastrable"}}},
		{"Entretien de la maison", [4]leafDef{{"Aspirateurs robots", "Aspirateur robot"}, {"Aspirateurs balais", "Aspirateur balai"}, {"Nettoyeurs vapeur", "Nettoyeur vapeur"}, {"Fers à repasser", "Fer à repasser"}}},
		{"Climatisation & chauffage", [4]leafDef{{"Ventilateurs", "Ventilateur"}, {"Radiateurs", "Radiateur électrique"}, {"Climatiseurs mobiles", "Climatiseur mobile"}, {"Purificateurs d'air", "Purificateur d'air"}}},
	}},
	{"Maison & Jardin", "MAI", []string{"@home", "Maison Lumière", "L'Atelier Déco", "Jardiland Pro", "Nordik", "Acme"}, [4]midDef{
		{"Mobilier", [4]leafDef{{"Canapés", "Canapé"}, {"Chaises", "Chaise"}, {"Tables", "Table"}, {"Rangements", "Étagère"}}},
		{"Décoration", [4]leafDef{{"Luminaires", "Lampe"}, {"Tapis", "Tapis"}, {"Cadres, affiches", "Cadre photo"}, {"Bougies & senteurs", "Bougie parfumée"}}},
		{"Jardin", [4]leafDef{{"Tondeuses", "Tondeuse"}, {"Barbecues", "Barbecue"}, {"Salons de jardin", "Salon de jardin"}, {"Arrosage", "Tuyau d'arrosage"}}},
		{"Linge de maison", [4]leafDef{{"Parures de lit", "Parure de lit"}, {"Serviettes", "Serviette de bain"}, {"Couettes", "Couette"}, {"Rideaux", "Rideau"}}},
	}},
	{"Sport & Loisirs", "SPO", []string{"Acme", "Decathlo", "Alpinéa", "Vélocité", "Peña Sports", "Trailblazer"}, [4]midDef{
		{"Fitness", [4]leafDef{{"Tapis de course", "Tapis de course"}, {"Haltères", "Haltère"}, {"Vélos d'appartement", "Vélo d'appartement"}, {"Yoga", "Tapis de yoga"}}},
		{"Cyclisme", [4]leafDef{{"Vélos électriques", "Vélo électrique"}, {"Casques vélo", "Casque vélo"}, {"Accessoires vélo", "Antivol vélo"}, {"Trottinettes", "Trottinette électrique"}}},
		{"Sports d'équipe", [4]leafDef{{"Football", "Ballon de football"}, {"Basketball", "Ballon de basket"}, {"Rugby", "Ballon de rugby"}, {"Tennis", "Raquette de tennis"}}},
		{"Outdoor", [4]leafDef{{"Tentes", "Tente"}, {"Sacs à dos", "Sac à dos"}, {"Randonnée", "Chaussures de randonnée"}, {"Pêche", "Canne à pêche"}}},
	}},
	{"Jeux & Jouets", "JEU", []string{"Acme", "Ludéo", "Brickworld", "Kawaï Toys", "Gamezone", "Petit Génie"}, [4]midDef{
		{"Jeux vidéo", [4]leafDef{{"Consoles", "Console"}, {"Jeux PS5", "Jeu PS5"}, {"Jeux Switch", "Jeu Switch"}, {"Manettes", "Manette"}}},
		{"Jeux de société", [4]leafDef{{"Stratégie", "Jeu de stratégie"}, {"Jeux d'ambiance", "Jeu d'ambiance"}, {"Puzzles", "Puzzle"}, {"Cartes à collectionner", "Booster"}}},
		{"Jouets", [4]leafDef{{"LEGO® & construction", "Jeu de construction"}, {"Poupées", "Poupée"}, {"Peluches", "Peluche"}, {"Véhicules RC", "Voiture radiocommandée"}}},
		{"Bébé", [4]leafDef{{"Poussettes", "Poussette"}, {"Sièges auto", "Siège auto"}, {"Éveil", "Jouet d'éveil"}, {"Biberons", "Biberon"}}},
	}},
	{"Bricolage", "BRI", []string{"Acme", "Outilpro", "Forgeron", "Visseo", "Kraftwerk", "Électra"}, [4]midDef{
		{"Outillage électroportatif", [4]leafDef{{"Perceuses", "Perceuse-visseuse"}, {"Scies", "Scie sauteuse"}, {"Ponceuses", "Ponceuse"}, {"Meuleuses", "Meuleuse d'angle"}}},
		{"Outillage à main", [4]leafDef{{"Tournevis", "Jeu de tournevis"}, {"Clés", "Clé à molette"}, {"Marteaux", "Marteau"}, {"Mesure", "Mètre ruban"}}},
		{"Électricité", [4]leafDef{{"Ampoules LED", "Ampoule LED E27"}, {"Rallonges", "Rallonge"}, {"Interrupteurs", "Interrupteur"}, {"Câbles électriques", "Câble électrique"}}},
		{"Quincaillerie", [4]leafDef{{"Vis & chevilles", "Boîte de vis"}, {"Serrures", "Serrure"}, {"Colles", "Colle"}, {"Fixations", "Crochet"}}},
	}},
	{"Beauté & Santé", "BEA", []string{"Acme", "Naturé", "Belle Peau", "Hygéa", "Œillet", "Zenwave"}, [4]midDef{
		{"Soins visage", [4]leafDef{{"Crèmes", "Crème hydratante"}, {"Sérums", "Sérum"}, {"Nettoyants", "Gel nettoyant"}, {"Masques", "Masque visage"}}},
		{"Hygiène", [4]leafDef{{"Brosses à dents électriques", "Brosse à dents électrique"}, {"Rasoirs", "Rasoir électrique"}, {"Tondeuses barbe", "Tondeuse barbe"}, {"Épilateurs", "Épilateur"}}},
		{"Parfums", [4]leafDef{{"Parfums femme", "Eau de parfum"}, {"Parfums homme", "Eau de toilette"}, {"Coffrets", "Coffret parfum"}, {"Déodorants", "Déodorant"}}},
		{"Santé", [4]leafDef{{"Tensiomètres", "Tensiomètre"}, {"Thermomètres", "Thermomètre"}, {"Pèse-personnes", "Pèse-personne"}, {"Compléments", "Complément alimentaire"}}},
	}},
	{"Auto & Moto", "AUT", []string{"Acme", "Motorix", "Roadstar", "Garage Dupré", "Pneumax", "Voltix"}, [4]midDef{
		{"Équipement auto", [4]leafDef{{"GPS", "GPS auto"}, {"Dashcams", "Dashcam"}, {"Autoradios", "Autoradio"}, {"Chargeurs voiture", "Chargeur allume-cigare"}}},
		{"Entretien auto", [4]leafDef{{"Huiles moteur", "Huile moteur 5W30"}, {"Nettoyage", "Shampoing carrosserie"}, {"Batteries auto", "Batterie auto"}, {"Pneus", "Pneu été"}}},
		{"Moto", [4]leafDef{{"Casques moto", "Casque moto"}, {"Blousons", "Blouson moto"}, {"Gants", "Gants moto"}, {"Antivols moto", "Antivol U"}}},
		{"Accessoires auto", [4]leafDef{{"Porte-vélos", "Porte-vélo"}, {"Coffres de toit", "Coffre de toit"}, {"Tapis de sol", "Tapis de sol"}, {"Housses", "Housse de siège"}}},
	}},
}

package seed

// Word pools for names, descriptions and attributes. Anything a person types shows up somewhere:
// quotes, commas, semicolons, tabs, \n and \r\n, accents, emoji, leading = + - @.

var adjectives = []string{
	"sans fil", "étanche", "compact", "professionnel", "ultra-fin", "pliable", "rechargeable",
	"silencieux", "connecté", "premium", "éco-conçu", "XXL", "portable", "haute précision",
	"wireless", "anti-rayures", "2-en-1", "à économie d'énergie", "rétro", "nomade",
}

var colors = []string{
	"Noir", "Blanc", "Gris anthracite", "Bleu nuit", "Rouge", "Vert sauge", "Rose poudré",
	"Argent", "Doré", "Beige", "Multicolore", "Jaune moutarde", "Bleu canard", "Crème",
}

var colorKeys = []string{
	"noir", "blanc", "gris", "bleu", "rouge", "vert", "rose", "argent", "or", "beige",
	"multicolore", "jaune", "bleu canard", "crème",
}

var editions = []string{
	"Ultra", "Pro", "Édition limitée", "Signature", "Noël", "Été 2025", "Max", "Lite", "Classic",
	"Performance", "Kids", "Studio",
}

var sizes = []string{
	"2m", "1,5 m", "500 ml", "128 Go", "1 To", "27\"", "XL", "Taille M", "40 x 60 cm", "3 pièces",
	"Lot de 2", "10 m", "250 g", "65W", "6 mm", "4K",
}

var sizeKeys = []string{"XS", "S", "M", "L", "XL", "XXL", "unique", "38", "42", "45", "50 cm", "1 m"}

var materials = []string{
	"aluminium", "acier inoxydable", "coton bio", "polyester recyclé", "bois de chêne",
	"plastique ABS", "verre trempé", "silicone", "cuir végétal", "bambou", "céramique",
}

var tags = []string{
	"promo", "nouveau", "best-seller", "éco", "made in France", "bluetooth", "fête des pères",
	"rentrée", "soldes", "exclusivité web", "🎧 audio", "✅ vérifié", "say \"hi\"", "a,b", "x;y",
	"été", "niño", "über", "=1+1", "@home", "+18", "-30%",
}

var origins = []string{"FR", "DE", "CN", "IT", "ES", "PT", "PL", "US", "VN", "TW"}

var modelLetters = []string{"X", "S", "M", "G", "R", "T", "Z", "K", "AX", "P", "Neo ", "Air "}

var modelSuffixes = []string{"", "", "", " Pro", " II", " Max", " Plus", " SE", " Mk3", "+"}

var intros = []string{
	"Notre %N %B %M allie performance et design.",
	"Découvrez notre %N %B, un produit conçu pour un usage quotidien.",
	"The %B %M is built for everyday use, with a 2-year warranty.",
	"Avec ce modèle %M, %B signe un produit robuste, simple et élégant.",
	"Nouveauté %B : %N %M, encore plus rapide et plus durable.",
	"%B %M : un produit fiable, testé par nos équipes; idéal pour débuter ou pour les pros.",
	"Conçu en Europe et fabriqué avec soin par %B : %N %M.",
	"%B %M : un produit pensé pour durer.",
}

var features = []string{
	"Garantie 2 ans.",
	"Livraison offerte dès 49 €.",
	"Compatible iOS, Android et Windows.",
	"Batterie longue durée : jusqu'à 30 h d'autonomie.",
	"Matériaux recyclés à 80 %; emballage sans plastique.",
	"Made in France 🇫🇷.",
	"Résistant à l'eau (IPX7).",
	"Certifié CE, RoHS, REACH.",
	"Tailles disponibles : S, M, L, XL.",
	"Contenu : 1 x câble, 1 x adaptateur, 1 x notice.",
	"Note des clients : 4,5/5 ⭐",
	"Idéal pour la cuisine, le salon ou le bureau.",
	"Design scandinave, finition chêne naturel.",
	"Prix « spécial » réservé aux membres.",
	"Fonctionne avec Alexa & Google Home.",
	"Nettoyage facile : passe au lave-vaisselle.",
	"Ne convient pas aux enfants de moins de 3 ans.",
	"Dimensions (L x l x h) : 30 x 20 x 10 cm.",
	"Señal estable, diseño español; envío rápido.",
	"Für den täglichen Gebrauch – Qualität geprüft (TÜV).",
	"Surnommé \"le couteau suisse\" par nos clients.",
	"Finition \"soft touch\", boutons rétroéclairés.",
	"Livré avec un étui \"premium\" et une housse de transport.",
	"Écran 6,1\" OLED; luminosité 1 200 cd/m².",
	"Consommation : 0,5 W en veille.",
	"Pièces détachées disponibles 10 ans.",
	"Œuvre d'un artisan lyonnais, chaque pièce est unique.",
	"Fits most 19\" racks; tool-free install.",
	"Entretien : lavage à 30 °C, ne pas sécher en machine.",
	"Retour gratuit sous 30 jours, remboursement garanti.",
}

var bulletFeatures = []string{
	"- Garantie constructeur 2 ans",
	"- Livraison gratuite en 48 h",
	"- Retour sous 30 jours",
	"- Compatible USB-C & Lightning",
	"- Fabriqué en Europe",
	"* Pièces d'origine",
	"• Câble inclus (1,2 m)",
}

var tabbedFeatures = []string{
	"Poids :\t1,2 kg",
	"Couleur :\tnoir\tblanc\tgris",
	"Réf.\tEAN\tStock",
	"Taille\tS\tM\tL",
}

var emojiTails = []string{" 🎧", " ✅ En stock", " 🔥 Meilleure vente", " ⚡ Charge rapide", " 🎁", " 👍😀", " ♻️"}

// Descriptions that start with a character a spreadsheet reads as a formula.
var leadingDescriptions = []string{
	"+33 1 23 45 67 89 : service client 7j/7. ",
	"-50% promo jusqu'à dimanche ! ",
	"@home : la collection maison. ",
	"=SUM(A1:A10) ",
	"+ de 1000 avis positifs. ",
	"-20 % sur le deuxième article. ",
	"=HYPERLINK(\"http://example.com/promo\",\"Voir l'offre\") ",
	"@everyone Nouveauté ! ",
}

// Product names that every export must carry unharmed (one product in 50 gets one of them).
var edgeNames = []string{
	"=HYPERLINK(\"http://example.com/x\",\"Cliquez ici\")",
	"Câble HDMI 2.1 \"Ultra\" 2m",
	"+33 6 12 34 56 78 Support",
	"-50% Casque Bluetooth",
	"@home Lampe connectée",
	"=1+1",
	"Tapis de yoga; antidérapant, 6 mm",
	"Écouteurs 🎧 sans fil ✅",
	"Peluche Ñandú \"Grüße\" – édition été",
	"Nom avec\ttabulation",
	"Lot de 2\nampoules LED",
	"Lot de 3\r\nverres à vin",
	"  espaces autour  ",
	"'apostrophe en tête",
	"\"Guillemets\" en tête",
	"<script>alert(\"xss\")</script>",
	"NULL",
	"日本語の商品名 – テスト",
	"منتج عربي",
	"=cmd|' /C calc'!A0",
	"@SUM(1+1)*cmd|' /C calc'!A0",
	"-2+3",
	"0042",
	"1E10",
	"Virgule, point-virgule; tabulation\tet \"guillemets\"",
	"Crème brûlée façon garçon – ça, c'est über cool (niño)",
	"Emoji only 🎧🎮📱💡",
	"\\N",
	"Zéro largeur\u200bespace",
	"Fin avec antislash \\",
}

// Supplier names that must survive an export.
var edgeSuppliers = []string{
	"=HYPERLINK(\"http://example.com\",\"Fournisseur\")",
	"@home Distribution",
	"-Discount Pro",
	"+Plus Import",
	"\"Le Petit Grossiste\", SAS",
	"Müller; Söhne & Co.",
	"Ñoño Importaciones\nS.L.",
	"Shenzhen Bright Star Co., Ltd. ✅",
}

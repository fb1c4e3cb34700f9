"""Word lists for product names, reviews and page bulk of the demo shop."""


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ADJECTIVES = _words(
    "Classic Relaxed Slim Cropped Oversized Tailored Vintage Essential Soft Textured Washed"
    " Ribbed Quilted Pleated Belted Brushed Utility Everyday Premium Lightweight Chunky Fitted"
    " Wide Boxy"
)

MATERIALS = _words(
    "Denim Linen Cotton Wool Cashmere Leather Suede Jersey Corduroy Satin Velvet Twill Fleece"
    " Poplin Chambray Merino"
)

STYLES = _words(
    "Ankle Crew Wrap Button Zip Hooded Longline Midi Maxi Mini Straight Tapered Bootcut Cargo"
    " Collared Vneck"
)

# garment:size-scale pairs; the scale chooses the sizes the stock API lists.
GARMENTS = tuple(
    tuple(pair.split(":"))
    for pair in _words(
        "Jeans:waist Trousers:waist Chinos:waist Shorts:waist Shirt:letter Blouse:letter"
        " Dress:letter Skirt:letter Jacket:letter Coat:letter Jumper:letter Cardigan:letter"
        " Hoodie:letter Blazer:letter Tee:letter Boots:shoe Trainers:shoe Loafers:shoe Scarf:one"
        " Bag:one Belt:one Hat:one"
    )
)

SIZES = {
    "waist": _words("26 28 30 32 34 36 38"),
    "letter": _words("XS S M L XL XXL"),
    "shoe": _words("3 4 5 6 7 8 9 10 11"),
    "one": ("One Size",),
}

REVIEW_WORDS = _words(
    "fits true to size lovely quality fabric colour washed well comfortable great for work"
    " and weekends slightly long in the arms would buy again soft warm light summer winter"
    " perfect delivery was quick returned exchanged smaller bigger material feels cheap"
    " expensive worth every penny my daughter husband loves it wore wedding holiday office"
    " stitching came loose after two washes pockets are deep button zip sticks a bit but"
    " overall happy with purchase recommend this shop not as pictured darker than expected"
    " brighter shade runs small large very flattering"
)

FIRST_NAMES = _words(
    "Amelia Olivia Isla Ava Mia Grace Sophie Emily Jack Harry Oliver George Noah Leo Arthur"
    " Oscar Priya Chloe Ruby Zara"
)

COLOUR_NAMES = _words(
    "Black Navy Ivory Stone Khaki Rust Sage Burgundy Mustard Charcoal Indigo Blush Olive"
    " Camel Teal Cream"
)

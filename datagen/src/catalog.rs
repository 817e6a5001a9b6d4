//! Master data: the ten fixed categories with their product templates and VND price ranges, and
//! the functions that make one category / product / customer row.
//!
//! Every row is a pure function of (seed, row id): each row draws from its own ChaCha RNG seeded
//! from both, so `generate` (COPY into Postgres, in chunks) and the in-memory [`crate::model::Shop`]
//! produce identical rows, and generating row 900,000 does not require generating the rows
//! before it. Uniqueness of emails and SKUs comes from the row id, never from chance.
//!
//! Owns no I/O and no shopper behaviour.

use fake::faker::address::en::{BuildingNumber, StreetName, StreetSuffix};
use fake::faker::company::en::CatchPhrase;
use fake::faker::name::en::{FirstName, LastName};
use fake::rand::rngs::ChaCha8Rng;
use fake::rand::{Rng, RngExt, SeedableRng};
use fake::Fake;
use sources::{Category, Customer, Micros, Money, Product};

/// The seeded RNG used everywhere in datagen (never `thread_rng`).
pub type ShopRng = ChaCha8Rng;

/// Master data timestamps are spread over the year before this instant (2025-01-01T00:00:00Z),
/// a constant so that the same seed gives byte-identical tables on every run.
pub const MASTER_EPOCH: Micros = Micros(1_735_689_600 * Micros::PER_SECOND);

const DAY: i64 = 86_400 * Micros::PER_SECOND;

/// One of the ten fixed categories.
pub struct CategorySpec {
    pub name: &'static str,
    pub description: &'static str,
    /// SKU prefix of its products.
    pub sku_prefix: &'static str,
    /// Unit price range in whole VND (inclusive).
    pub price_vnd: (i64, i64),
    pub brands: &'static [&'static str],
    pub items: &'static [&'static str],
    pub variants: &'static [&'static str],
}

/// The ten fixed categories (as before), prices in VND.
pub const CATEGORIES: [CategorySpec; 10] = [
    CategorySpec {
        name: "Laptops",
        description: "Notebooks and ultrabooks for work, study and gaming",
        sku_prefix: "LAP",
        price_vnd: (15_000_000, 25_000_000),
        brands: &["Dell", "HP", "Lenovo", "Asus", "Acer", "Apple", "MSI"],
        items: &[
            "Ultrabook",
            "Gaming Laptop",
            "Notebook",
            "2-in-1 Laptop",
            "Workstation",
        ],
        variants: &["13\"", "14\"", "15.6\"", "16\"", "Pro", "Air", "Plus"],
    },
    CategorySpec {
        name: "Smartphones",
        description: "Phones from budget to flagship",
        sku_prefix: "PHN",
        price_vnd: (5_000_000, 15_000_000),
        brands: &[
            "Samsung", "Apple", "Xiaomi", "Oppo", "Vivo", "Realme", "Nokia",
        ],
        items: &[
            "Galaxy",
            "iPhone",
            "Redmi Note",
            "Reno",
            "Y-Series",
            "Narzo",
            "G-Series",
        ],
        variants: &["128GB", "256GB", "5G", "Lite", "Pro", "Max"],
    },
    CategorySpec {
        name: "Books",
        description: "Fiction, non-fiction, textbooks and comics",
        sku_prefix: "BOK",
        price_vnd: (50_000, 400_000),
        brands: &[
            "NXB Tre",
            "Nha Nam",
            "Alpha Books",
            "Penguin",
            "O'Reilly",
            "Kim Dong",
        ],
        items: &[
            "Novel",
            "Cookbook",
            "Biography",
            "Programming Guide",
            "Comic",
            "Textbook",
        ],
        variants: &["Paperback", "Hardcover", "Vol. 1", "Vol. 2", "2nd Edition"],
    },
    CategorySpec {
        name: "Audio",
        description: "Headphones, earbuds and speakers",
        sku_prefix: "AUD",
        price_vnd: (300_000, 8_000_000),
        brands: &["Sony", "JBL", "Bose", "Sennheiser", "Anker", "Marshall"],
        items: &[
            "Headphones",
            "Earbuds",
            "Bluetooth Speaker",
            "Soundbar",
            "Headset",
        ],
        variants: &["Wireless", "Noise Cancelling", "Sport", "Mini", "Pro"],
    },
    CategorySpec {
        name: "Fashion",
        description: "Clothing, shoes and accessories",
        sku_prefix: "FSH",
        price_vnd: (150_000, 2_000_000),
        brands: &[
            "Uniqlo", "Zara", "H&M", "Canifa", "Nike", "Adidas", "Biti's",
        ],
        items: &[
            "T-Shirt", "Jeans", "Sneakers", "Jacket", "Dress", "Backpack",
        ],
        variants: &["S", "M", "L", "XL", "Black", "White", "Navy"],
    },
    CategorySpec {
        name: "Home & Kitchen",
        description: "Appliances, cookware and home goods",
        sku_prefix: "HOM",
        price_vnd: (200_000, 5_000_000),
        brands: &[
            "Philips",
            "Sunhouse",
            "Lock&Lock",
            "Panasonic",
            "Sharp",
            "Tefal",
        ],
        items: &[
            "Rice Cooker",
            "Air Fryer",
            "Blender",
            "Kettle",
            "Cookware Set",
            "Vacuum",
        ],
        variants: &["1.8L", "Compact", "Deluxe", "Stainless", "Smart"],
    },
    CategorySpec {
        name: "Sports & Outdoors",
        description: "Fitness, camping and outdoor gear",
        sku_prefix: "SPO",
        price_vnd: (100_000, 6_000_000),
        brands: &[
            "Decathlon",
            "Yonex",
            "Li-Ning",
            "Coleman",
            "Garmin",
            "Under Armour",
        ],
        items: &[
            "Yoga Mat",
            "Badminton Racket",
            "Tent",
            "Running Watch",
            "Dumbbell Set",
        ],
        variants: &["Beginner", "Pro", "2-Person", "Lightweight", "Adjustable"],
    },
    CategorySpec {
        name: "Beauty & Personal Care",
        description: "Skincare, makeup and grooming",
        sku_prefix: "BTY",
        price_vnd: (80_000, 1_500_000),
        brands: &[
            "L'Oreal",
            "Innisfree",
            "Cocoon",
            "La Roche-Posay",
            "Maybelline",
            "Gillette",
        ],
        items: &[
            "Sunscreen",
            "Serum",
            "Cleanser",
            "Lipstick",
            "Shaving Kit",
            "Shampoo",
        ],
        variants: &["50ml", "100ml", "Travel Size", "Sensitive", "Matte"],
    },
    CategorySpec {
        name: "Toys & Games",
        description: "Toys, board games and puzzles",
        sku_prefix: "TOY",
        price_vnd: (100_000, 2_000_000),
        brands: &["LEGO", "Hasbro", "Mattel", "Ravensburger", "Bandai"],
        items: &[
            "Building Set",
            "Board Game",
            "Puzzle",
            "Action Figure",
            "RC Car",
        ],
        variants: &["500 pcs", "1000 pcs", "Family Edition", "Deluxe", "Starter"],
    },
    CategorySpec {
        name: "Groceries",
        description: "Coffee, snacks and pantry staples",
        sku_prefix: "GRO",
        price_vnd: (20_000, 500_000),
        brands: &[
            "Trung Nguyen",
            "Vinamilk",
            "Highlands",
            "Acecook",
            "Kinh Do",
            "ST25",
        ],
        items: &[
            "Ground Coffee",
            "Milk Box",
            "Instant Noodles",
            "Mooncake",
            "Rice Bag",
        ],
        variants: &["250g", "500g", "1kg", "Pack of 6", "Gift Box"],
    },
];

/// Cities with their provinces, for addresses (the shop sells in VND).
pub const CITIES: [(&str, &str); 10] = [
    ("Ha Noi", "Ha Noi"),
    ("Ho Chi Minh City", "Ho Chi Minh"),
    ("Da Nang", "Da Nang"),
    ("Hai Phong", "Hai Phong"),
    ("Can Tho", "Can Tho"),
    ("Nha Trang", "Khanh Hoa"),
    ("Hue", "Thua Thien Hue"),
    ("Bien Hoa", "Dong Nai"),
    ("Vung Tau", "Ba Ria - Vung Tau"),
    ("Quy Nhon", "Binh Dinh"),
];

/// Tags separating the RNG streams of different tables.
#[derive(Copy, Clone)]
#[repr(u64)]
pub enum Stream {
    Product = 1,
    Customer = 2,
    Simulation = 3,
}

/// SplitMix64 finaliser: a well-mixed 64-bit value from (seed, stream, id).
fn mix(seed: u64, stream: u64, id: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(id.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG of one row (or of one simulation stream).
pub fn row_rng(seed: u64, stream: Stream, id: i64) -> ShopRng {
    ShopRng::seed_from_u64(mix(seed, stream as u64, id as u64))
}

/// Category number `index` (0-based): the first ten are the fixed ones; more repeat them with a
/// numeric suffix (`Laptops 2`) so names stay unique.
pub fn category_spec(index: usize) -> &'static CategorySpec {
    &CATEGORIES[index % CATEGORIES.len()]
}

pub fn category_name(index: usize) -> String {
    let spec = category_spec(index);
    match index / CATEGORIES.len() {
        0 => spec.name.to_string(),
        n => format!("{} {}", spec.name, n + 1),
    }
}

pub fn category_row(index: usize, category_id: i64) -> Category {
    Category {
        category_id,
        name: category_name(index),
        description: Some(category_spec(index).description.to_string()),
        created_at: Some(Micros(MASTER_EPOCH.0 - 400 * DAY)),
    }
}

fn pick<'a>(rng: &mut ShopRng, items: &'a [&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Product `product_id` of a category chosen (by its own RNG) from `categories`, given as
/// (category_id, category index). `categories` must not be empty.
pub fn product_row(seed: u64, product_id: i64, categories: &[(i64, usize)]) -> Product {
    let mut rng = row_rng(seed, Stream::Product, product_id);
    let (category_id, index) = categories[rng.random_range(0..categories.len().max(1))];
    let spec = category_spec(index);
    let name = format!(
        "{} {} {}",
        pick(&mut rng, spec.brands),
        pick(&mut rng, spec.items),
        pick(&mut rng, spec.variants)
    );
    // Whole thousands of VND, as real price tags are.
    let (lo, hi) = spec.price_vnd;
    let vnd = rng.random_range(lo / 1000..=hi / 1000) * 1000;
    let catch: String = CatchPhrase().fake_with_rng(&mut rng);
    let created = MASTER_EPOCH.0 - rng.random_range(30 * DAY..365 * DAY);
    let updated = created + rng.random_range(0..30 * DAY);
    Product {
        product_id,
        sku: format!("{}-{:07}", spec.sku_prefix, product_id),
        description: Some(format!("{name}. {catch}.")),
        name,
        price: Money::from_minor(vnd * 100),
        stock: Some(rng.random_range(10..=100)),
        category_id: Some(category_id),
        is_active: Some(rng.random_bool(0.75)),
        created_at: Some(Micros(created)),
        updated_at: Some(Micros(updated)),
    }
}

/// Lower-case ASCII letters and digits only, for the local part of an email.
fn email_part(s: &str) -> String {
    let p: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if p.is_empty() {
        "x".into()
    } else {
        p
    }
}

/// A street address in one of [`CITIES`]: (street line, city, province, zip).
pub fn address(rng: &mut ShopRng) -> (String, &'static str, &'static str, String) {
    let number: String = BuildingNumber().fake_with_rng(rng);
    let street: String = StreetName().fake_with_rng(rng);
    let suffix: String = StreetSuffix().fake_with_rng(rng);
    let (city, province) = CITIES[rng.random_range(0..CITIES.len())];
    let zip = format!("{:06}", rng.random_range(100_000..=999_999));
    (format!("{number} {street} {suffix}"), city, province, zip)
}

/// Customer `customer_id`. The email embeds the id, so it is unique at any scale. The password
/// hash is random hex from the row's RNG: it looks like a digest but no password hashes to it.
pub fn customer_row(seed: u64, customer_id: i64) -> Customer {
    let mut rng = row_rng(seed, Stream::Customer, customer_id);
    let first: String = FirstName().fake_with_rng(&mut rng);
    let last: String = LastName().fake_with_rng(&mut rng);
    let (street, city, province, zip) = address(&mut rng);
    let hash = format!(
        "fake-sha256${:016x}{:016x}{:016x}{:016x}",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64()
    );
    let phone = format!(
        "+84 9{} {:03} {:03}",
        rng.random_range(0..10),
        rng.random_range(0..1000),
        rng.random_range(0..1000)
    );
    let created = MASTER_EPOCH.0 - rng.random_range(0..365 * DAY);
    let updated = created + rng.random_range(0..30 * DAY);
    Customer {
        customer_id,
        email: format!(
            "{}.{}.{}@example.com",
            email_part(&first),
            email_part(&last),
            customer_id
        ),
        first_name: Some(first),
        last_name: last,
        password_hash: hash,
        address: Some(format!("{street}, {city}, {province} {zip}, Vietnam")),
        phone_number: Some(phone),
        created_at: Some(Micros(created)),
        updated_at: Some(Micros(updated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_pure_functions_of_seed_and_id() {
        let cats = [(1, 0), (2, 1), (3, 2)];
        assert_eq!(product_row(7, 42, &cats), product_row(7, 42, &cats));
        assert_ne!(product_row(7, 42, &cats), product_row(8, 42, &cats));
        assert_eq!(customer_row(7, 42), customer_row(7, 42));
        assert_ne!(customer_row(7, 42).email, customer_row(7, 43).email);
    }

    #[test]
    fn prices_fall_in_the_category_range() {
        for id in 1..500 {
            let p = product_row(1, id, &[(5, 0)]);
            let vnd = p.price.minor() / 100;
            assert!((15_000_000..=25_000_000).contains(&vnd), "{vnd}");
            assert_eq!(p.price.minor() % 100_000, 0);
            assert!((10..=100).contains(&p.stock.unwrap_or(0)));
            assert!(p.sku.starts_with("LAP-"));
        }
        assert_eq!(category_name(13), "Audio 2");
    }
}

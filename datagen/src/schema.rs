//! The shop's DDL (SPEC §1): the ten captured tables, their constraints and indexes,
//! `REPLICA IDENTITY FULL` on each, and the publication change capture reads.
//!
//! Owns only SQL text. Executing it (idempotently, in a transaction) is `db`'s job.

/// The publication `init` creates for the ten tables, unless `--publication` names another.
pub const DEFAULT_PUBLICATION: &str = "shop_pub";

/// The ten tables in dependency order (referenced tables first): creation follows this order,
/// dropping the reverse.
pub const TABLES: [&str; 10] = [
    "categories",
    "customers",
    "products",
    "payments",
    "shipments",
    "orders",
    "order_items",
    "carts",
    "wishlists",
    "product_views",
];

/// Tables holding master data, kept by `clear --activity`.
pub const MASTER_TABLES: [&str; 3] = ["categories", "customers", "products"];

/// Tables written by shopper activity, emptied by `clear --activity`.
pub const ACTIVITY_TABLES: [&str; 7] = [
    "payments",
    "shipments",
    "orders",
    "order_items",
    "carts",
    "wishlists",
    "product_views",
];

/// Idempotent DDL for the tables and indexes (`IF NOT EXISTS` everywhere). Money is
/// `NUMERIC(14,2)`: the old `NUMERIC(10,2)` overflowed at 100M VND.
pub const CREATE_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS categories (
    category_id  serial PRIMARY KEY,
    name         varchar(100) NOT NULL UNIQUE,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS customers (
    customer_id    serial PRIMARY KEY,
    first_name     varchar(100),
    last_name      varchar(100) NOT NULL,
    email          varchar(255) NOT NULL UNIQUE,
    password_hash  varchar(255) NOT NULL,
    address        text,
    phone_number   varchar(50),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    product_id   serial PRIMARY KEY,
    sku          varchar(64) NOT NULL UNIQUE,
    name         varchar(255) NOT NULL,
    description  text,
    price        numeric(14,2) NOT NULL CHECK (price >= 0),
    stock        integer CHECK (stock >= 0),
    category_id  integer REFERENCES categories (category_id),
    is_active    boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS payments (
    payment_id      serial PRIMARY KEY,
    payment_date    timestamptz NOT NULL DEFAULT now(),
    payment_method  varchar(20) NOT NULL
        CHECK (payment_method IN ('credit_card', 'debit_card', 'paypal', 'bank_transfer')),
    amount          numeric(14,2) NOT NULL CHECK (amount >= 0),
    status          varchar(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'completed', 'failed', 'refunded')),
    transaction_id  varchar(64) UNIQUE,
    customer_id     integer REFERENCES customers (customer_id)
);

CREATE TABLE IF NOT EXISTS shipments (
    shipment_id      serial PRIMARY KEY,
    shipment_date    timestamptz,
    address          text,
    city             varchar(100),
    state            varchar(100),
    country          varchar(100),
    zip_code         varchar(20),
    status           varchar(20) NOT NULL DEFAULT 'preparing'
        CHECK (status IN ('preparing', 'shipped', 'delivered', 'returned')),
    tracking_number  varchar(64) UNIQUE,
    customer_id      integer REFERENCES customers (customer_id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
    order_id     serial PRIMARY KEY,
    order_date   timestamptz NOT NULL DEFAULT now(),
    total_price  numeric(14,2) NOT NULL CHECK (total_price >= 0),
    status       varchar(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    customer_id  integer REFERENCES customers (customer_id),
    payment_id   integer REFERENCES payments (payment_id),
    shipment_id  integer REFERENCES shipments (shipment_id)
);

CREATE TABLE IF NOT EXISTS order_items (
    order_item_id  serial PRIMARY KEY,
    order_id       integer REFERENCES orders (order_id) ON DELETE CASCADE,
    product_id     integer REFERENCES products (product_id),
    quantity       integer NOT NULL CHECK (quantity > 0),
    price          numeric(14,2) NOT NULL CHECK (price >= 0)
);

CREATE TABLE IF NOT EXISTS carts (
    cart_id      serial PRIMARY KEY,
    customer_id  integer REFERENCES customers (customer_id),
    product_id   integer REFERENCES products (product_id),
    quantity     integer NOT NULL CHECK (quantity > 0),
    added_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, product_id)
);

CREATE TABLE IF NOT EXISTS wishlists (
    wishlist_id  serial PRIMARY KEY,
    customer_id  integer REFERENCES customers (customer_id),
    product_id   integer REFERENCES products (product_id),
    added_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, product_id)
);

CREATE TABLE IF NOT EXISTS product_views (
    view_id      bigserial PRIMARY KEY,
    customer_id  integer REFERENCES customers (customer_id),
    product_id   integer REFERENCES products (product_id),
    category_id  integer REFERENCES categories (category_id),
    viewed_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (product_id IS NOT NULL OR category_id IS NOT NULL)
);

-- Lookups the API and the simulator make (the unique constraints above already index
-- email, sku, transaction_id, tracking_number and carts/wishlists by customer).
CREATE INDEX IF NOT EXISTS products_category_id_idx ON products (category_id);
CREATE INDEX IF NOT EXISTS payments_customer_id_idx ON payments (customer_id);
CREATE INDEX IF NOT EXISTS shipments_customer_id_idx ON shipments (customer_id);
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
CREATE INDEX IF NOT EXISTS orders_order_date_idx ON orders (order_date);
CREATE INDEX IF NOT EXISTS orders_status_idx ON orders (status);
CREATE INDEX IF NOT EXISTS order_items_order_id_idx ON order_items (order_id);
CREATE INDEX IF NOT EXISTS order_items_product_id_idx ON order_items (product_id);
CREATE INDEX IF NOT EXISTS carts_product_id_idx ON carts (product_id);
CREATE INDEX IF NOT EXISTS wishlists_product_id_idx ON wishlists (product_id);
CREATE INDEX IF NOT EXISTS product_views_customer_id_idx ON product_views (customer_id);
CREATE INDEX IF NOT EXISTS product_views_product_id_idx ON product_views (product_id);
CREATE INDEX IF NOT EXISTS product_views_viewed_at_idx ON product_views (viewed_at);

ALTER TABLE categories REPLICA IDENTITY FULL;
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE products REPLICA IDENTITY FULL;
ALTER TABLE payments REPLICA IDENTITY FULL;
ALTER TABLE shipments REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE order_items REPLICA IDENTITY FULL;
ALTER TABLE carts REPLICA IDENTITY FULL;
ALTER TABLE wishlists REPLICA IDENTITY FULL;
ALTER TABLE product_views REPLICA IDENTITY FULL;
"#;

/// Quotes an SQL identifier (`"a""b"`), for names taken from the command line.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the publication for the ten tables when no publication of that name exists
/// (`CREATE PUBLICATION` has no `IF NOT EXISTS`). An existing one is left as it is.
pub fn create_publication(name: &str) -> String {
    let literal = name.replace('\'', "''");
    format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{literal}') THEN \
             CREATE PUBLICATION {ident} FOR TABLE {tables}; \
           END IF; \
         END $$;",
        ident = quote_ident(name),
        tables = TABLES.join(", ")
    )
}

/// Drops the publication and every table (`reset`).
pub fn drop_all(publication: &str) -> String {
    let mut sql = format!("DROP PUBLICATION IF EXISTS {};\n", quote_ident(publication));
    for t in TABLES.iter().rev() {
        sql.push_str(&format!("DROP TABLE IF EXISTS {t} CASCADE;\n"));
    }
    sql
}

/// Empties tables and restarts their identities. `TRUNCATE` (not `DELETE`): millions of rows go
/// in one statement, and change capture sees one truncate per table instead of a delete per row.
pub fn truncate(tables: &[&str]) -> String {
    format!("TRUNCATE {} RESTART IDENTITY CASCADE;", tables.join(", "))
}

/// Moves every table's id sequence past its highest id, so that rows inserted with explicit
/// ids (COPY, the simulator) never collide with later `DEFAULT` ids.
pub fn sync_sequences() -> String {
    let mut sql = String::new();
    for (table, key) in TABLES.iter().zip(KEY_COLUMNS) {
        sql.push_str(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{key}'), \
             GREATEST((SELECT COALESCE(MAX({key}), 0) FROM {table}), 1), \
             (SELECT COUNT(*) > 0 FROM {table}));\n"
        ));
    }
    sql
}

/// Primary-key columns, in [`TABLES`] order.
pub const KEY_COLUMNS: [&str; 10] = [
    "category_id",
    "customer_id",
    "product_id",
    "payment_id",
    "shipment_id",
    "order_id",
    "order_item_id",
    "cart_id",
    "wishlist_id",
    "view_id",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_columns_match_shared_table_names() {
        for (i, t) in sources::Table::ALL.iter().enumerate() {
            assert_eq!(t.name(), TABLES[i]);
            assert_eq!(t.key_column(), KEY_COLUMNS[i]);
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert!(create_publication("x'y").contains("pubname = 'x''y'"));
    }
}

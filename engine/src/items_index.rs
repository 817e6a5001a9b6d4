//! The ingest's index from an order to the keys of its items: a set of `(order_id, item_id)`
//! pairs, read one order at a time.
//!
//! Layout, for memory: a `BTreeSet<(i64, i64)>` cost about 32 B per item (nodes half full
//! under ascending inserts), more than the item's own upsert slot. Here orders are grouped in
//! pages of 64 consecutive ids, as in [`crate::upsert::Keyed`]: serial ids make pages dense,
//! and a page holds its pairs as two parallel sorted vectors, the order's offset in the page
//! (one byte) and the item id, so a pair costs 9 B plus vector slack. A page holds a few
//! hundred pairs at most, so inserting or removing in the middle moves little.
//!
//! Owns only the index; what an item is, and when it counts, is the ingest's business.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::upsert::PageHasher;

const PAGE_BITS: u32 = 6;

/// `(order_id, item_id)` pairs, a set.
#[derive(Debug, Default)]
pub struct ItemsByOrder {
    pages: HashMap<i64, Page, BuildHasherDefault<PageHasher>>,
    len: usize,
}

/// One page's pairs sorted by `(offset, item)`.
#[derive(Debug, Default)]
struct Page {
    offsets: Vec<u8>,
    items: Vec<i64>,
}

/// Page number and offset of an order id (floor division, so negative ids work too).
fn split(order: i64) -> (i64, u8) {
    (order >> PAGE_BITS, (order & ((1 << PAGE_BITS) - 1)) as u8)
}

impl Page {
    /// Index range of the pairs with this offset.
    fn range(&self, offset: u8) -> std::ops::Range<usize> {
        let lo = self.offsets.partition_point(|&o| o < offset);
        let hi = lo + self.offsets[lo..].partition_point(|&o| o == offset);
        lo..hi
    }
}

impl ItemsByOrder {
    /// Adds the pair; false if it was present.
    pub fn insert(&mut self, order: i64, item: i64) -> bool {
        let (p, offset) = split(order);
        let page = self.pages.entry(p).or_default();
        let r = page.range(offset);
        match page.items[r.clone()].binary_search(&item) {
            Ok(_) => false,
            Err(i) => {
                page.offsets.insert(r.start + i, offset);
                page.items.insert(r.start + i, item);
                self.len += 1;
                true
            }
        }
    }

    /// Removes the pair; false if it was absent.
    pub fn remove(&mut self, order: i64, item: i64) -> bool {
        let (p, offset) = split(order);
        let Some(page) = self.pages.get_mut(&p) else {
            return false;
        };
        let r = page.range(offset);
        let Ok(i) = page.items[r.clone()].binary_search(&item) else {
            return false;
        };
        page.offsets.remove(r.start + i);
        page.items.remove(r.start + i);
        self.len -= 1;
        if page.items.is_empty() {
            self.pages.remove(&p);
        } else if page.items.capacity() > 2 * page.items.len() + 8 {
            // deletes must give memory back, or a page that once was large stays large
            page.items.shrink_to_fit();
            page.offsets.shrink_to_fit();
        }
        true
    }

    /// The item ids of `order`, ascending.
    pub fn items(&self, order: i64) -> &[i64] {
        let (p, offset) = split(order);
        match self.pages.get(&p) {
            Some(page) => &page.items[page.range(offset)],
            None => &[],
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The index against a plain ordered set over a deterministic random mix of inserts and
    /// removes (duplicates, absent pairs, negative and far-apart order ids, shrinking pages).
    #[test]
    fn matches_a_plain_set() {
        let mut index = ItemsByOrder::default();
        let mut model = BTreeSet::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let orders = [
            -130,
            -65,
            -64,
            -1,
            0,
            1,
            63,
            64,
            65,
            127,
            1 << 40,
            i64::MAX,
            i64::MIN,
        ];
        for step in 0..60_000 {
            let order = if next(4) == 0 {
                orders[next(orders.len() as u64) as usize]
            } else {
                next(300) as i64 - 20
            };
            let item = next(40) as i64 - 5;
            // phases of mostly inserts then mostly removes, so pages grow and shrink
            let insert = next(10) < if (step / 10_000) % 2 == 0 { 8 } else { 2 };
            if insert {
                assert_eq!(index.insert(order, item), model.insert((order, item)));
            } else {
                assert_eq!(index.remove(order, item), model.remove(&(order, item)));
            }
            assert_eq!(index.len(), model.len());
            if step % 97 == 0 {
                for &o in orders.iter().chain([order, order.wrapping_add(1)].iter()) {
                    let want: Vec<i64> = model
                        .range((o, i64::MIN)..=(o, i64::MAX))
                        .map(|p| p.1)
                        .collect();
                    assert_eq!(index.items(o), &want[..], "order {o}");
                }
            }
        }
        for &(o, i) in model.iter() {
            assert!(index.items(o).contains(&i));
        }
    }
}

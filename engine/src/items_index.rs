//! The ingest's index from an order to the keys of its items: a set of `(order_id, item_id)`
//! pairs, read one order at a time.
//!
//! Layout, for memory: a `BTreeSet<(i64, i64)>` cost about 32 B per item (nodes half full
//! under ascending inserts), more than the item's own upsert slot. Here orders are grouped in
//! pages of 64 consecutive ids, as in [`crate::upsert::Keyed`]: serial ids make pages dense,
//! and a page holds its pairs as two parallel sorted vectors, the order's offset in the page
//! (one byte) and the item id, as a 32-bit offset from a base while the page's ids fit (the
//! items of 64 consecutive orders have nearby ids), so a pair costs 5 B plus vector slack
//! (9 B in a page whose ids do not fit). A page holds a few hundred pairs at most, so inserting
//! or removing in the middle moves little.
//!
//! Owns only the index; what an item is, and when it counts, is the ingest's business.

use std::cmp::Ordering;
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
    items: Ids,
}

/// A page's item ids, in pair order: `base + narrow[i]` while every id fits, else whole.
#[derive(Debug)]
enum Ids {
    Narrow { base: i64, ids: Vec<u32> },
    Wide(Vec<i64>),
}

impl Default for Ids {
    fn default() -> Self {
        Ids::Narrow {
            base: 0,
            ids: Vec::new(),
        }
    }
}

/// How far below its first item id a page's base is put, so that smaller ids still fit.
const ID_SLACK: i64 = 1 << 16;

/// `item - base` as a narrow id, or which side of the narrow range `item` lies on.
fn offset(base: i64, item: i64) -> Result<u32, Ordering> {
    let d = i128::from(item) - i128::from(base);
    if d < 0 {
        Err(Ordering::Less)
    } else {
        u32::try_from(d).map_err(|_| Ordering::Greater)
    }
}

impl Ids {
    fn len(&self) -> usize {
        match self {
            Ids::Narrow { ids, .. } => ids.len(),
            Ids::Wide(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> i64 {
        match self {
            Ids::Narrow { base, ids } => base + i64::from(ids[i]),
            Ids::Wide(v) => v[i],
        }
    }

    /// Position of `item` in the sorted `range`, as `binary_search` gives it.
    fn search(&self, range: std::ops::Range<usize>, item: i64) -> Result<usize, usize> {
        match self {
            Ids::Narrow { base, ids } => {
                let slice = &ids[range];
                // below the base: before all; beyond 32 bits above it: after all
                match offset(*base, item) {
                    Ok(d) => slice.binary_search(&d),
                    Err(Ordering::Less) => Err(0),
                    Err(_) => Err(slice.len()),
                }
            }
            Ids::Wide(v) => v[range].binary_search(&item),
        }
    }

    fn insert(&mut self, i: usize, item: i64) {
        if let Ids::Narrow { base, ids } = self {
            if ids.is_empty() {
                *base = item.saturating_sub(ID_SLACK);
            }
            match offset(*base, item) {
                Ok(d) => {
                    ids.insert(i, d);
                    return;
                }
                Err(_) => {
                    let b = *base;
                    let v = ids.iter().map(|&d| b + i64::from(d)).collect();
                    *self = Ids::Wide(v);
                }
            }
        }
        if let Ids::Wide(v) = self {
            v.insert(i, item);
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Ids::Narrow { ids, .. } => {
                ids.remove(i);
            }
            Ids::Wide(v) => {
                v.remove(i);
            }
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Ids::Narrow { ids, .. } => ids.capacity(),
            Ids::Wide(v) => v.capacity(),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Ids::Narrow { ids, .. } => ids.shrink_to_fit(),
            Ids::Wide(v) => v.shrink_to_fit(),
        }
    }
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
        match page.items.search(r.clone(), item) {
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
        let Ok(i) = page.items.search(r.clone(), item) else {
            return false;
        };
        page.offsets.remove(r.start + i);
        page.items.remove(r.start + i);
        self.len -= 1;
        if page.items.len() == 0 {
            self.pages.remove(&p);
        } else if page.items.capacity() > 2 * page.items.len() + 8 {
            // deletes must give memory back, or a page that once was large stays large
            page.items.shrink_to_fit();
            page.offsets.shrink_to_fit();
        }
        true
    }

    /// The item ids of `order`, ascending.
    pub fn items(&self, order: i64) -> impl Iterator<Item = i64> + '_ {
        let (p, offset) = split(order);
        self.pages
            .get(&p)
            .into_iter()
            .flat_map(move |page| page.range(offset).map(move |i| page.items.get(i)))
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
            // now and then an id far from the rest, which widens its page
            let item = if next(50) == 0 {
                [i64::MIN, -(1 << 40), 1 << 40, i64::MAX][next(4) as usize]
            } else {
                next(40) as i64 - 5
            };
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
                    assert_eq!(index.items(o).collect::<Vec<_>>(), want, "order {o}");
                }
            }
        }
        for &(o, i) in model.iter() {
            assert!(index.items(o).any(|x| x == i));
        }
    }
}

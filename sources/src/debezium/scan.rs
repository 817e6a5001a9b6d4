//! A fast path for splitting a message into [`Msg`]: one hand-written pass over the text for
//! the shapes Debezium writes. serde_json's generic machinery (a visitor call, a field
//! identifier and an escape scan per key, `Option` and `RawValue` plumbing per value) cost
//! several times the bytes' worth on our ~300-byte messages.
//!
//! It is strictly a subset of the serde path: it accepts only input that serde_json accepts,
//! and builds the very same [`Msg`]. Anything it is not sure about — an escape in a key or a
//! typed string, a duplicated `source`/`transaction` field, a wrong type, deep nesting, any
//! syntax error — makes it give up (`None`), and the caller parses with serde_json, which then
//! decides acceptance and words every error exactly as before. The unit tests check the subset
//! property on valid and mutated messages.

use super::envelope::{Msg, Raw, RawRow, Source, Str, TxBlockRaw};
use std::borrow::Cow;
use std::cell::RefCell;

thread_local! {
    /// The steps of the last `source` block scanned on this thread (see [`Scan::source`]),
    /// what it may step over next time.
    static SOURCE_MEMO: RefCell<Vec<Step>> = const { RefCell::new(Vec::new()) };
}

/// One step of a `source` block in [`SOURCE_MEMO`]: from the start of a member to the value of
/// the next field read, the exact text (the members skipped on the way, each with the comma and
/// whitespace after it, then the field's key with its colon and the whitespace around it), and
/// which field that is.
#[derive(Default)]
struct Step {
    text: Vec<u8>,
    field: usize,
}

/// Steps of a `source` block [`SOURCE_MEMO`] remembers (one per field read: five in
/// Debezium's PostgreSQL connector's block): bounds what an odd block can leave behind.
const MEMO_STEPS: usize = 16;

/// Payload wrappers nest at most this deep on the fast path (Debezium nests one).
const MAX_MSG_DEPTH: u32 = 4;
/// Arrays and objects inside a raw value nest at most this deep on the fast path.
const MAX_VALUE_DEPTH: u32 = 64;

/// `Some(None)` for the JSON text `null`, `Some(Some(msg))` for a message object, `None` when
/// the serde path must decide.
#[cfg(test)]
pub(super) fn message(text: &str) -> Option<Option<Msg<'_>>> {
    let mut msg = Msg::default();
    Some(message_into(text, &mut msg)?.then_some(msg))
}

/// [`message`] into `msg` (which must be `Msg::default()`): `Some(false)` for `null`,
/// `Some(true)` for a message object, `None` when the serde path must decide (`msg` is then
/// partly filled). Filled in place because a `Msg` is 272 bytes: returned through `Option`s
/// and `Result`s it was copied several times over per message, and those copies were ~6% of
/// the reader's instructions.
pub(super) fn message_into<'a>(text: &'a str, msg: &mut Msg<'a>) -> Option<bool> {
    let mut s = Scan {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    let present = if s.null() {
        false
    } else {
        s.msg_into(0, msg)?;
        true
    };
    s.ws();
    if s.i != s.b.len() {
        return None;
    }
    Some(present)
}

/// The index of a `source` field [`Scan::source`] reads (`seen` and the memo's `field`), or
/// `None` for a member it skips.
fn field_index(key: &str) -> Option<usize> {
    match key {
        "table" => Some(0),
        "lsn" => Some(1),
        "txId" => Some(2),
        "ts_ms" => Some(3),
        "snapshot" => Some(4),
        _ => None,
    }
}

/// `a == b`, eight bytes at a time with no call, for the short texts compared at every
/// message: column names, and the source block's remembered steps (`==` called `memcmp`
/// for each of those: 1.7% of the pipeline's samples at 1M orders of the e2e bench).
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        // `==` calls `memcmp` here too: short keys and names ("lsn", "price", "status")
        if n >= 4 {
            let half = |s: &[u8], at: usize| -> u32 {
                let mut w = [0u8; 4];
                w.copy_from_slice(&s[at..at + 4]);
                u32::from_le_bytes(w)
            };
            return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
        }
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    if n <= 16 {
        // most names and members: two overlapping words, no loop
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // the last word, overlapping the previous one where the length is not a multiple of 8
    word(a, n - 8) == word(b, n - 8)
}

/// Bytes that end a string's plain run: the quote, a backslash, control characters.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The index of the first byte at or after `i` that ends a plain run ([`STOP`]), eight bytes
/// at a time: keys and string values are short runs, and a table lookup per byte was most of
/// the scanner's time on them (callgrind: ~90 instructions per key).
#[inline(always)]
fn plain_run_end(b: &[u8], mut i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // a byte's high bit is set in the result where the byte is zero; a false positive can
    // only follow a true one (a borrow runs upwards), so the lowest set bit is exact
    let zero_bytes = |v: u64| v.wrapping_sub(LO) & !v & HI;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // below 0x20: subtracting 0x20 borrows into the high bit, which was clear
        let control = w.wrapping_sub(0x20 * LO) & !w & HI;
        let hits = zero_bytes(w ^ (u64::from(b'"') * LO))
            | zero_bytes(w ^ (u64::from(b'\\') * LO))
            | control;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    Some(i + b.get(i..)?.iter().position(|&c| STOP[c as usize])?)
}

struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// serde_json's whitespace: space, tab, newline, carriage return.
    // Called around every key and value (~40 times a message) and nearly always facing a
    // byte above the space (Debezium writes compact JSON): that one comparison decides,
    // inlined (the loop's four-way test was ~3% of the reader's instructions).
    #[inline(always)]
    fn ws(&mut self) {
        if self.b.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + w.len())? == w {
            self.i += w.len();
            Some(())
        } else {
            None
        }
    }

    /// Consumes `null` when it is next.
    fn null(&mut self) -> bool {
        self.word(b"null").is_some()
    }

    /// After a member: `,` (then the next key) or the closing `}`. `Some(true)` to go on.
    fn next_member(&mut self) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.ws();
                Some(true)
            }
            b'}' => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// `{` then whitespace; `Some(false)` for an empty object (consumed).
    fn open_object(&mut self) -> Option<bool> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(false);
        }
        Some(true)
    }

    /// A string without escapes or control characters: its content. Anything else gives up
    /// (serde_json would unescape into an owned string or fail).
    // `always`: kept out of line (even with `#[inline]`), the call's register saves and
    // restores were a third of a key's cost; inlined, the reader ran 5% fewer instructions
    #[inline(always)]
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        self.i = plain_run_end(self.b, start)?;
        if self.b[self.i] != b'"' {
            return None;
        }
        // Quotes are ASCII, so both ends are char boundaries of the (valid UTF-8) text.
        let out = self.s.get(start..self.i)?;
        self.i += 1;
        Some(out)
    }

    /// A key and its colon.
    #[inline(always)]
    fn key(&mut self) -> Option<&'a str> {
        let k = self.plain_str()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(k)
    }

    /// Skips a string as serde_json's `ignore_str` does: escapes are checked for form only.
    #[inline(always)]
    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.i = plain_run_end(self.b, self.i)?;
            let c = self.b[self.i];
            self.i += 1;
            match c {
                b'"' => return Some(()),
                b'\\' => match *self.b.get(self.i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                    b'u' => {
                        let hex = self.b.get(self.i + 1..self.i + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.i += 5;
                    }
                    _ => return None,
                },
                0..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// Consumes a run of ASCII digits; its length. Eight bytes at a time: ~7 numbers a message
    /// (ids, quantities, `txId`, `lsn`, `ts_ms`), and a byte-wise loop was most of their cost.
    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            // a byte is a digit when it is 0x30..=0x39: its high nibble is 3 and adding 6 to
            // it does not carry into the high nibble (no byte carries into the next here)
            let high = (w & 0xF0F0_F0F0_F0F0_F0F0) ^ 0x3030_3030_3030_3030;
            let low = ((w & 0x0F0F_0F0F_0F0F_0F0F) + 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0;
            let not_digit = high | low;
            if not_digit != 0 {
                self.i += (not_digit.trailing_zeros() / 8) as usize;
                return self.i - start;
            }
            self.i += 8;
        }
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number by JSON's grammar (serde_json's `ignore_integer`/`_decimal`/`_exponent`).
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Skips any JSON value.
    // `always`: ~20 values a message are skipped (every column's raw text, the unused keys of
    // `source`), nearly all scalars; the call into the recursive skipper cost more than a
    // short string's scan.
    #[inline(always)]
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_str(),
            b'n' => self.word(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => self.skip_other(depth),
        }
    }

    /// [`Scan::skip_value`] of what is not a string, number or null.
    fn skip_other(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'{' => {
                if depth >= MAX_VALUE_DEPTH {
                    return None;
                }
                if !self.open_object()? {
                    return Some(());
                }
                loop {
                    self.skip_str()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    if !self.next_member()? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                if depth >= MAX_VALUE_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.ws();
                        }
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// Any value's text.
    fn raw(&mut self) -> Option<Raw<'a>> {
        let start = self.i;
        self.skip_value(0)?;
        Some(Raw(self.s.get(start..self.i)?))
    }

    /// `Option<Raw>` as serde reads it: `null` is `None`.
    fn opt_raw(&mut self) -> Option<Option<Raw<'a>>> {
        if self.null() {
            return Some(None);
        }
        self.raw().map(Some)
    }

    fn opt_str(&mut self) -> Option<Option<Str<'a>>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(Str(Cow::Borrowed(self.plain_str()?))))
    }

    /// `Option<u64>`: `null` or a plain non-negative integer that fits (serde_json refuses a
    /// sign, fraction, exponent or overflow for a `u64`; those go the serde way).
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        let mut v = 0u64;
        for &d in &self.b[start..self.i] {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        Some(Some(v))
    }

    /// A row image: members in order, duplicates kept (as `RowVisitor` does).
    fn row(&mut self) -> Option<RawRow<'a>> {
        let mut row = RawRow {
            cols: Vec::with_capacity(12),
        };
        if !self.open_object()? {
            return Some(row);
        }
        loop {
            let k = self.key()?;
            let v = self.raw()?;
            row.cols.push((Str(Cow::Borrowed(k)), v));
            if !self.next_member()? {
                return Some(row);
            }
        }
    }

    /// The `source` block; a repeated known field is a serde error, so it gives up.
    ///
    /// Most of the block is the same in every message of a connector (version, connector,
    /// name, db, schema: half its members, none of them read; and the read fields' keys), and
    /// scanning it was a quarter of the reader's instructions. So the block is remembered as
    /// steps ([`SOURCE_MEMO`]): from a member's start to the next read field's value, the
    /// skipped members and that field's key, as exact text. Where the text here is the very
    /// same, it is stepped over at once and only the field's value is scanned. Safe whatever
    /// the input: those bytes, at the start of a member, scan to the same unknown keys and
    /// valid values, each followed by a comma, then to the same field's key, so stepping over
    /// them is what scanning them would do (a field read twice still gives up: `seen`). A step
    /// whose text differs (a member changed or moved) is scanned member by member and
    /// remembered anew. One comparison per read field, where remembering each member on its
    /// own took a comparison and a round of the loop per member (~1,400 instructions a block).
    fn source(&mut self) -> Option<Source<'a>> {
        let mut src = Source::default();
        if !self.open_object()? {
            return Some(src);
        }
        SOURCE_MEMO.with(|memo| {
            let mut memo = memo.borrow_mut();
            let mut seen = [false; 5];
            for step in 0.. {
                let start = self.i;
                let (b, i) = (self.b, start);
                let remembered = memo.get(step).filter(|m| {
                    b.get(i..i + m.text.len())
                        .is_some_and(|r| same_bytes(r, &m.text))
                });
                let field = match remembered {
                    Some(m) => {
                        // the text ends in whitespace remembered from last time; more may follow
                        self.i += m.text.len();
                        self.ws();
                        m.field
                    }
                    None => {
                        // members up to the next field's key; the block may end first
                        let field = loop {
                            match field_index(self.key()?) {
                                Some(f) => break f,
                                None => {
                                    self.skip_value(0)?;
                                    if !self.next_member()? {
                                        return Some(src);
                                    }
                                }
                            }
                        };
                        if step < MEMO_STEPS {
                            while memo.len() <= step {
                                memo.push(Step::default());
                            }
                            let m = &mut memo[step];
                            m.text.clear();
                            m.text.extend_from_slice(self.b.get(start..self.i)?);
                            m.field = field;
                        }
                        field
                    }
                };
                if seen[field] {
                    return None;
                }
                seen[field] = true;
                match field {
                    0 => src.table = self.opt_str()?,
                    1 => src.lsn = self.opt_raw()?,
                    2 => src.tx_id = self.opt_raw()?,
                    3 => src.ts_ms = self.opt_raw()?,
                    _ => src.snapshot = self.opt_raw()?,
                }
                if !self.next_member()? {
                    break;
                }
            }
            Some(src)
        })
    }

    /// The `transaction` block; `id` is required.
    fn tx_block(&mut self) -> Option<TxBlockRaw<'a>> {
        let mut id = None;
        let mut total_order = None;
        let mut data_collection_order = None;
        if self.open_object()? {
            loop {
                match self.key()? {
                    "id" => {
                        if id.is_some() {
                            return None;
                        }
                        id = Some(Str(Cow::Borrowed(self.plain_str()?)));
                    }
                    "total_order" => {
                        if total_order.is_some() {
                            return None;
                        }
                        total_order = Some(self.opt_u64()?);
                    }
                    "data_collection_order" => {
                        if data_collection_order.is_some() {
                            return None;
                        }
                        data_collection_order = Some(self.opt_u64()?);
                    }
                    _ => self.skip_value(0)?,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        Some(TxBlockRaw {
            id: id?,
            total_order: total_order.flatten(),
            data_collection_order: data_collection_order.flatten(),
        })
    }

    /// One message object into `m` (a `Msg::default()`), member by member as `MsgVisitor`
    /// takes them (later duplicates win).
    fn msg_into(&mut self, depth: u32, m: &mut Msg<'a>) -> Option<()> {
        if depth >= MAX_MSG_DEPTH {
            return None;
        }
        if !self.open_object()? {
            return Some(());
        }
        loop {
            let k = self.key()?;
            match k {
                "schema" => m.schema = Some(self.raw()?),
                "payload" => {
                    m.payload = Some(if self.null() {
                        None
                    } else {
                        let mut inner = Box::<Msg>::default();
                        self.msg_into(depth + 1, &mut inner)?;
                        Some(inner)
                    });
                }
                "before" => {
                    m.has_envelope_key = true;
                    m.before = self.opt_raw()?;
                }
                "after" => {
                    m.has_envelope_key = true;
                    m.after = if self.null() { None } else { Some(self.row()?) };
                }
                "source" => {
                    m.has_envelope_key = true;
                    m.source = if self.null() {
                        None
                    } else {
                        Some(self.source()?)
                    };
                }
                "op" => {
                    m.has_envelope_key = true;
                    m.op = self.opt_str()?;
                }
                "transaction" => {
                    m.transaction = if self.null() {
                        None
                    } else {
                        Some(self.tx_block()?)
                    };
                }
                "ts_ms" | "ts_us" | "ts_ns" => self.skip_value(0)?,
                _ => {
                    let v = self.raw()?;
                    m.extras.cols.push((Str(Cow::Borrowed(k)), v));
                }
            }
            if !self.next_member()? {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `digits` counts exactly the leading ASCII digits, from any offset, for texts of every
    /// length around the eight-byte steps, with the bytes next to the digits' range (`/`, `:`,
    /// and bytes sharing a digit's low or high nibble) anywhere.
    #[test]
    fn digits_counts_the_leading_digit_run() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let alphabet = b"0123456789/:;?@ !APQp`\"";
        for _ in 0..20_000 {
            let len = rng.random_range(0..=26);
            // mostly digits, so long runs are common
            let text: String = (0..len)
                .map(|_| {
                    if rng.random_bool(0.8) {
                        char::from(b'0' + rng.random_range(0..10u8))
                    } else {
                        char::from(alphabet[rng.random_range(0..alphabet.len())])
                    }
                })
                .collect();
            let from = rng.random_range(0..=len);
            let mut s = Scan {
                s: &text,
                b: text.as_bytes(),
                i: from,
            };
            let want = text.as_bytes()[from..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            assert_eq!(s.digits(), want, "{text:?} from {from}");
            assert_eq!(s.i, from + want);
        }
    }

    /// `same_bytes` is `==` for every length around its word boundaries, for equal slices and
    /// slices differing in any one byte.
    #[test]
    fn same_bytes_is_slice_equality() {
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "{n} {at}");
            }
            assert!(!same_bytes(&a, &[a.as_slice(), b"x"].concat()));
        }
    }

    /// The subset property: whatever the fast path accepts, serde_json accepts too, into the
    /// same [`Msg`].
    fn check(text: &str) {
        if let Some(fast) = message(text) {
            match serde_json::from_str::<Option<Msg>>(text) {
                Ok(slow) => assert_eq!(fast, slow, "{text}"),
                Err(e) => panic!("fast path accepted what serde_json refuses ({e}): {text}"),
            }
        }
    }

    /// Messages the fast path must take (and agree with serde_json on).
    fn corpus() -> Vec<String> {
        let mut v: Vec<String> = [
            r#"{"before":null,"after":{"order_id":7,"order_date":"2026-01-01T00:00:00.020000Z","total_price":"1234.50","status":"pending","customer_id":42,"payment_id":null,"shipment_id":null},"source":{"version":"2.7.0.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":0,"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":501,"lsn":1002},"op":"c","ts_ms":0}"#,
            r#"{"before":null,"after":{"order_id":1,"order_date":"2026-11-25T10:01:00.000001Z","total_price":150037.2,"status":"confirmed","customer_id":2,"payment_id":8,"shipment_id":null},"source":{"version":"2.7.3.Final","connector":"postgresql","name":"ecommerce-cdc","ts_ms":1764064800001,"snapshot":"false","db":"shop","sequence":"[\"30000100\",\"30000156\"]","ts_us":1764064800000000,"ts_ns":1764064800000000000,"schema":"public","table":"orders","txId":800,"lsn":30000156,"xmin":null},"op":"c","ts_ms":1764064800123,"ts_us":1764064800123456,"ts_ns":1764064800123456789,"transaction":{"id":"800:30000100","total_order":1,"data_collection_order":1}}"#,
            r#"{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"14"},"field":"total_price"}],"optional":true,"field":"after"}],"optional":false},"payload":{"before":null,"after":{"order_id":3,"total_price":"AJiW"},"source":{"table":"orders","lsn":"16/B374D848","txId":"5","snapshot":true},"op":"r"}}"#,
            r#"{"schema":{"type":"struct"},"payload":null}"#,
            r#"{"order_item_id":10,"order_id":1,"product_id":2,"quantity":3,"price":"A5lh","__op":"c","__lsn":3,"__deleted":"false","__source_txId":1,"__table":"order_items"}"#,
            r#"{"status":"BEGIN","id":"571:53195832","event_count":null,"data_collections":null,"ts_ms":1486500577125}"#,
            r#"{"status":"END","id":"571:53195832","event_count":2,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.order_items","event_count":1}],"ts_ms":1486500577691}"#,
            r#"{"before":{"order_id":9},"after":null,"source":{"table":"orders","txId":12,"lsn":99},"op":"d","ts_ms":0,"transaction":{"id":"12:99","total_order":18446744073709551615,"data_collection_order":null,"extra":[1,{"a":[]}]}}"#,
            r#"null"#,
            " \t\r\n{ \"before\" : null , \"after\" : { \"a\" : [ 1 , -0 , 0.5 , 1e3 , -1.25E-2 , 2E+7 , true , false , null , { } , [ ] ] } , \"op\" : \"u\" } \n",
            r#"{"after":{"name":"名前 \"quoted\" \\ \/ \b\f\n\r\t \u00e9\uD83D\uDE00","x":"\u0000"},"op":"c","source":{"table":"customers"}}"#,
            r#"{"after":{"a":1},"after":{"b":2},"op":"c","op":"u","source":null,"source":{"table":"carts"},"payload":{"x":1}}"#,
            r#"{"payload":{"payload":{"after":{"cart_id":1},"op":"c"}}}"#,
            r#"{}"#,
            r#"{"transaction":null,"schema":null,"before":"text","extra":{"deep":[[[[{"k":"v"}]]]]}}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Real connector output, where the shared fixtures are present.
        if let Ok(dir) = std::fs::read_dir("/work/shared/fixtures/debezium") {
            for e in dir.flatten() {
                if e.path().extension().is_some_and(|x| x == "json") {
                    if let Ok(t) = std::fs::read_to_string(e.path()) {
                        v.push(t);
                    }
                }
            }
        }
        v
    }

    /// A `source` block scanned after others (its members' text remembered) reads as it does
    /// cold, and as serde_json reads it: random blocks of known and unknown members, repeated,
    /// reordered, changed in one value, with odd whitespace, duplicated or cut short.
    #[test]
    fn remembered_source_members_read_as_scanned_cold() {
        let members = [
            r#""version":"2.7.0.Final""#,
            r#""version":"2.7.1.Final""#,
            r#""connector":"postgresql""#,
            r#""name":"ecommerce-cdc""#,
            r#""db":"shop""#,
            r#""db" : "shop" "#,
            r#""dbx":"shop""#,
            r#""schema":"public""#,
            r#""sequence":"[\"1\",\"2\"]""#,
            r#""xmin":null"#,
            r#""extra":{"a":[1,2,{"b":null}]}"#,
            r#""table":"orders""#,
            r#""table":"order_items""#,
            r#""txId":501"#,
            r#""txId" : 503"#,
            r#""table" :"orders""#,
            r#""txId":502"#,
            r#""lsn":1002"#,
            r#""ts_ms":0"#,
            r#""snapshot":"false""#,
            r#""snapshot":true"#,
            // more whitespace after a remembered key or value than last time
            r#""txId":  501"#,
            r#""snapshot": "false""#,
            r#""ts_ms":0 "#,
            r#""table":"orders"  "#,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut last = String::new();
        for round in 0..5_000 {
            // mostly the last block again with one member changed, sometimes a new one
            let block = if round % 7 != 0 && !last.is_empty() {
                let mut parts: Vec<&str> = last.split(',').collect();
                let at = next(parts.len());
                parts[at] = members[next(members.len())];
                parts.join(",")
            } else {
                let n = 1 + next(14);
                let parts: Vec<&str> = (0..n).map(|_| members[next(members.len())]).collect();
                parts.join(if next(4) == 0 { " , " } else { "," })
            };
            last = block.clone();
            let text = format!(r#"{{"after":{{"id":1}},"source":{{{block}}},"op":"c"}}"#);
            let warm = message(&text);
            SOURCE_MEMO.with(|m| m.borrow_mut().clear());
            let cold = message(&text);
            assert_eq!(warm, cold, "{text}");
            check(&text);
            // and warm again from this block
            assert_eq!(message(&text), cold, "{text}");
        }
    }

    /// The word-at-a-time scan stops where the byte-at-a-time one does, at every offset and
    /// for stop bytes and high (UTF-8) bytes anywhere.
    #[test]
    fn plain_run_end_equals_a_byte_scan() {
        let alphabet = [
            b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xff, 0x00, b'0',
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| {
                    let r = x.rotate_left(k as u32 * 5);
                    if r.is_multiple_of(5) {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (r >> 16) as u8 % 26
                    }
                })
                .collect();
            for i in 0..=len + 1 {
                let want = bytes
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&c| STOP[c as usize]))
                    .map(|p| i + p);
                assert_eq!(plain_run_end(&bytes, i), want, "{bytes:?} from {i}");
            }
        }
    }

    #[test]
    fn fast_path_takes_the_corpus_and_agrees_with_serde() {
        for text in corpus() {
            assert!(message(&text).is_some(), "fast path gave up on {text}");
            check(&text);
        }
    }

    #[test]
    fn fast_path_gives_up_where_serde_must_decide() {
        for text in [
            r#"{"af\u0074er":{"a":1}}"#,
            r#"{"after":{"\u0061":1}}"#,
            r#"{"op":"\u0063"}"#,
            r#"{"source":{"table":"orders","table":"carts"}}"#,
            r#"{"source":["orders"]}"#,
            r#"{"transaction":{"total_order":1}}"#,
            r#"{"transaction":{"id":"1","total_order":-1}}"#,
            r#"{"transaction":{"id":"1","total_order":1.0}}"#,
            r#"{"transaction":{"id":"1","total_order":18446744073709551616}}"#,
            r#"{"transaction":{"id":"1","total_order":01}}"#,
            r#"{"after":{"a":01}}"#,
            r#"{"after":{"a":1.}}"#,
            r#"{"after":{"a":"\x"}}"#,
            r#"{"after":{"a":"\u12g4"}}"#,
            r#"{"after":{"a":1,}}"#,
            r#"{"after":[1,]}"#,
            r#"{"after":{"a":1}} x"#,
            r#"{"after":nul}"#,
            "{\"after\":{\"a\":\"tab\there\"}}",
            "\u{feff}{}",
            r#"[]"#,
            r#"{"payload":{"payload":{"payload":{"payload":{}}}}}"#,
        ] {
            assert!(message(text).is_none(), "fast path took {text}");
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(message(&deep).is_none());
    }

    /// Every single-byte edit and every truncation of the corpus: the fast path never accepts
    /// what serde_json refuses, nor reads anything differently.
    #[test]
    fn mutations_keep_the_subset_property() {
        const EDITS: &[u8] = b"\"\\{}[],: 0-.eE+n\x01x/u";
        for text in corpus() {
            let b = text.as_bytes();
            for i in 0..=b.len() {
                check(std::str::from_utf8(&b[..i]).unwrap_or(""));
                if i == b.len() {
                    break;
                }
                let mut del = b.to_vec();
                del.remove(i);
                if let Ok(t) = std::str::from_utf8(&del) {
                    check(t);
                }
                for &c in EDITS {
                    for insert in [false, true] {
                        let mut m = b.to_vec();
                        if insert {
                            m.insert(i, c);
                        } else {
                            m[i] = c;
                        }
                        if let Ok(t) = std::str::from_utf8(&m) {
                            check(t);
                        }
                    }
                }
            }
        }
    }
}

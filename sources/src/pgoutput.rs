//! pgoutput (logical replication protocol version 1) decoding: the wire messages, and a
//! [`Decoder`] that keeps the relation cache and turns row messages into typed [`Change`]s of
//! our ten tables, matching columns by NAME.
//!
//! Owns only decoding. Must not talk to the server, acknowledge anything, or group
//! transactions (the Postgres source does that with Begin/Commit).

use crate::postgres::rows::{self, Field, RowError};
use crate::types::{Change, ChangeKind, Lsn, Op, Table};
use std::collections::HashMap;

/// One column of a Relation message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelColumn {
    /// Bit 1: part of the replica identity key.
    pub flags: u8,
    pub name: String,
    pub type_oid: u32,
    pub typmod: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<RelColumn>,
}

/// One column value of a TupleData.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TupleValue {
    /// 'n'
    Null,
    /// 'u': unchanged TOASTed value, not sent.
    Unchanged,
    /// 't'
    Text(String),
    /// 'b' (only with the binary option, which we do not request).
    Binary(Vec<u8>),
}

pub type Tuple = Vec<TupleValue>;

/// A decoded pgoutput message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: Lsn,
        commit_time: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    Relation(Relation),
    Insert {
        rel: u32,
        new: Tuple,
    },
    Update {
        rel: u32,
        /// 'K' (key columns only) or 'O' (the full old row, REPLICA IDENTITY FULL).
        old: Option<(u8, Tuple)>,
        new: Tuple,
    },
    Delete {
        rel: u32,
        old: (u8, Tuple),
    },
    Truncate {
        options: u8,
        rels: Vec<u32>,
    },
    /// Type, Origin, logical Message: nothing for us.
    Ignored(u8),
}

/// Why a pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("pgoutput {msg}: truncated at byte {at}")]
    Truncated { msg: char, at: usize },
    #[error("pgoutput: unknown message tag {0:?}")]
    UnknownTag(char),
    #[error("pgoutput {msg}: {what}")]
    Malformed { msg: char, what: String },
    #[error("pgoutput: row for relation {0} arrived before its Relation message")]
    UnknownRelation(u32),
    #[error("pgoutput: relation {rel} ({name}) has {expected} columns, tuple has {got}")]
    ColumnCount {
        rel: u32,
        name: String,
        expected: usize,
        got: usize,
    },
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    msg: char,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated {
                msg: self.msg,
                at: self.pos,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Truncated {
                msg: self.msg,
                at: self.pos,
            })?;
        let s = String::from_utf8(rest[..end].to_vec()).map_err(|e| DecodeError::Malformed {
            msg: self.msg,
            what: format!("string is not UTF-8: {e}"),
        })?;
        self.pos += end + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let n = self.u16()? as usize;
        let mut t = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = self.u8()?;
            t.push(match kind {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::Unchanged,
                b't' | b'b' => {
                    let len = self.i32()?;
                    if len < 0 {
                        return Err(DecodeError::Malformed {
                            msg: self.msg,
                            what: format!("negative value length {len}"),
                        });
                    }
                    let bytes = self.take(len as usize)?;
                    if kind == b't' {
                        TupleValue::Text(String::from_utf8(bytes.to_vec()).map_err(|e| {
                            DecodeError::Malformed {
                                msg: self.msg,
                                what: format!("text value is not UTF-8: {e}"),
                            }
                        })?)
                    } else {
                        TupleValue::Binary(bytes.to_vec())
                    }
                }
                other => {
                    return Err(DecodeError::Malformed {
                        msg: self.msg,
                        what: format!("unknown tuple value kind {:?}", other as char),
                    })
                }
            });
        }
        Ok(t)
    }
}

/// Decodes one pgoutput message (the payload of an XLogData).
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let Some(&tag) = buf.first() else {
        return Err(DecodeError::Truncated { msg: '?', at: 0 });
    };
    let mut c = Cursor {
        buf,
        pos: 1,
        msg: tag as char,
    };
    Ok(match tag {
        b'B' => Message::Begin {
            final_lsn: Lsn(c.u64()?),
            commit_time: c.u64()? as i64,
            xid: c.u32()?,
        },
        b'C' => Message::Commit {
            flags: c.u8()?,
            commit_lsn: Lsn(c.u64()?),
            end_lsn: Lsn(c.u64()?),
            commit_time: c.u64()? as i64,
        },
        b'R' => {
            let oid = c.u32()?;
            let namespace = c.cstr()?;
            let name = c.cstr()?;
            let replica_identity = c.u8()?;
            let n = c.u16()? as usize;
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                columns.push(RelColumn {
                    flags: c.u8()?,
                    name: c.cstr()?,
                    type_oid: c.u32()?,
                    typmod: c.i32()?,
                });
            }
            Message::Relation(Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let rel = c.u32()?;
            match c.u8()? {
                b'N' => Message::Insert {
                    rel,
                    new: c.tuple()?,
                },
                k => {
                    return Err(DecodeError::Malformed {
                        msg: 'I',
                        what: format!("expected 'N', got {:?}", k as char),
                    })
                }
            }
        }
        b'U' => {
            let rel = c.u32()?;
            let mut kind = c.u8()?;
            let old = if kind == b'K' || kind == b'O' {
                let t = c.tuple()?;
                let k = kind;
                kind = c.u8()?;
                Some((k, t))
            } else {
                None
            };
            if kind != b'N' {
                return Err(DecodeError::Malformed {
                    msg: 'U',
                    what: format!("expected 'N', got {:?}", kind as char),
                });
            }
            Message::Update {
                rel,
                old,
                new: c.tuple()?,
            }
        }
        b'D' => {
            let rel = c.u32()?;
            let kind = c.u8()?;
            if kind != b'K' && kind != b'O' {
                return Err(DecodeError::Malformed {
                    msg: 'D',
                    what: format!("expected 'K' or 'O', got {:?}", kind as char),
                });
            }
            Message::Delete {
                rel,
                old: (kind, c.tuple()?),
            }
        }
        b'T' => {
            let n = c.u32()? as usize;
            let options = c.u8()?;
            let mut rels = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                rels.push(c.u32()?);
            }
            Message::Truncate { options, rels }
        }
        b'Y' | b'O' | b'M' => Message::Ignored(tag),
        other => return Err(DecodeError::UnknownTag(other as char)),
    })
}

/// A Relation mapped onto one of our tables.
#[derive(Clone, Debug)]
struct Mapped {
    rel: Relation,
    /// `None` when the relation is not one of the ten tables: its rows are skipped.
    table: Option<Table>,
}

/// Why a row message could not become a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The row could not be typed: the source counts it and skips it.
    #[error("row at {lsn} cannot be typed: {source}")]
    Row {
        lsn: Lsn,
        #[source]
        source: RowError,
    },
}

/// Keeps the relation cache of one replication session and turns row messages into changes.
#[derive(Default)]
pub struct Decoder {
    relations: HashMap<u32, Mapped>,
}

fn field<'a>(rel: &'a Relation, tuple: &'a Tuple, column: &str) -> Field<'a> {
    match rel.columns.iter().position(|c| c.name == column) {
        None => Field::Missing,
        Some(i) => match tuple.get(i) {
            None => Field::Missing,
            Some(TupleValue::Null) => Field::Null,
            Some(TupleValue::Unchanged) => Field::Unchanged,
            Some(TupleValue::Text(s)) => Field::Text(s),
            // Binary output is never requested; treat it as absent rather than guess.
            Some(TupleValue::Binary(_)) => Field::Missing,
        },
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The relation with this OID, if its Relation message was seen.
    pub fn relation(&self, oid: u32) -> Option<&Relation> {
        self.relations.get(&oid).map(|m| &m.rel)
    }

    fn mapped(&self, rel: u32, tuple: &Tuple) -> Result<&Mapped, DecodeError> {
        let m = self
            .relations
            .get(&rel)
            .ok_or(DecodeError::UnknownRelation(rel))?;
        if tuple.len() != m.rel.columns.len() {
            return Err(DecodeError::ColumnCount {
                rel,
                name: format!("{}.{}", m.rel.namespace, m.rel.name),
                expected: m.rel.columns.len(),
                got: tuple.len(),
            });
        }
        Ok(m)
    }

    /// Applies one decoded message: Relation messages update the cache; Insert, Update,
    /// Delete and Truncate of our tables append their changes (with `lsn`, the record's WAL
    /// position) to `out`. Begin/Commit/ignored messages append nothing.
    pub fn apply(
        &mut self,
        msg: Message,
        lsn: Lsn,
        out: &mut Vec<Change>,
    ) -> Result<(), ChangeError> {
        let row_err = |source| ChangeError::Row { lsn, source };
        match msg {
            Message::Relation(rel) => {
                let table = Table::from_name(&rel.name).filter(|t| t.name() == rel.name);
                self.relations.insert(rel.oid, Mapped { rel, table });
            }
            Message::Insert { rel, new } => {
                let m = self.mapped(rel, &new)?;
                if let Some(table) = m.table {
                    let (row, unavailable) =
                        rows::typed_row(table, |c| field(&m.rel, &new, c)).map_err(row_err)?;
                    out.push(Change {
                        table,
                        op: Op::Create,
                        lsn: Some(lsn),
                        kind: ChangeKind::Upsert { row, unavailable },
                    });
                }
            }
            Message::Update { rel, old, new } => {
                let m = self.mapped(rel, &new)?;
                if let Some(table) = m.table {
                    // An unchanged TOAST value in the new row is taken from the full old row
                    // when the identity is FULL; only if that has none either is the column
                    // marked unavailable (the engine then keeps its stored value).
                    let old_t = old.as_ref().map(|(_, t)| t);
                    let get = |c: &str| match field(&m.rel, &new, c) {
                        Field::Unchanged => match old_t.map(|t| field(&m.rel, t, c)) {
                            Some(f @ (Field::Text(_) | Field::Null)) => f,
                            _ => Field::Unchanged,
                        },
                        f => f,
                    };
                    let (row, unavailable) = rows::typed_row(table, get).map_err(row_err)?;
                    // A primary-key change: the old key's row is gone.
                    if let Some((_, t)) = &old {
                        if t.len() == m.rel.columns.len() {
                            if let Ok(old_key) = rows::key_of(table, |c| field(&m.rel, t, c)) {
                                if old_key != row.key() {
                                    out.push(Change {
                                        table,
                                        op: Op::Delete,
                                        lsn: Some(lsn),
                                        kind: ChangeKind::Delete { key: old_key },
                                    });
                                }
                            }
                        }
                    }
                    out.push(Change {
                        table,
                        op: Op::Update,
                        lsn: Some(lsn),
                        kind: ChangeKind::Upsert { row, unavailable },
                    });
                }
            }
            Message::Delete { rel, old: (_, old) } => {
                let m = self.mapped(rel, &old)?;
                if let Some(table) = m.table {
                    let key = rows::key_of(table, |c| field(&m.rel, &old, c)).map_err(row_err)?;
                    out.push(Change {
                        table,
                        op: Op::Delete,
                        lsn: Some(lsn),
                        kind: ChangeKind::Delete { key },
                    });
                }
            }
            Message::Truncate { rels, .. } => {
                for rel in rels {
                    let m = self
                        .relations
                        .get(&rel)
                        .ok_or(DecodeError::UnknownRelation(rel))?;
                    if let Some(table) = m.table {
                        out.push(Change {
                            table,
                            op: Op::Truncate,
                            lsn: Some(lsn),
                            kind: ChangeKind::Truncate,
                        });
                    }
                }
            }
            Message::Begin { .. } | Message::Commit { .. } | Message::Ignored(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Money, Row};

    fn cstr(b: &mut Vec<u8>, s: &str) {
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }

    fn relation(oid: u32, name: &str, cols: &[&str]) -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend_from_slice(&oid.to_be_bytes());
        cstr(&mut b, "public");
        cstr(&mut b, name);
        b.push(b'f');
        b.extend_from_slice(&(cols.len() as u16).to_be_bytes());
        for (i, c) in cols.iter().enumerate() {
            b.push(u8::from(i == 0));
            cstr(&mut b, c);
            b.extend_from_slice(&25u32.to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
        }
        b
    }

    fn tuple(b: &mut Vec<u8>, vals: &[Option<&str>]) {
        b.extend_from_slice(&(vals.len() as u16).to_be_bytes());
        for v in vals {
            match v {
                None => b.push(b'n'),
                Some("<u>") => b.push(b'u'),
                Some(s) => {
                    b.push(b't');
                    b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    const ITEM_COLS: [&str; 5] = [
        "order_item_id",
        "order_id",
        "product_id",
        "quantity",
        "price",
    ];

    #[test]
    fn begin_commit_and_truncate_decode() {
        let mut b = vec![b'B'];
        b.extend_from_slice(&0x1_0000_0010u64.to_be_bytes());
        b.extend_from_slice(&5i64.to_be_bytes());
        b.extend_from_slice(&77u32.to_be_bytes());
        assert_eq!(
            decode(&b).unwrap(),
            Message::Begin {
                final_lsn: Lsn(0x1_0000_0010),
                commit_time: 5,
                xid: 77
            }
        );
        let mut c = vec![b'C', 0];
        c.extend_from_slice(&10u64.to_be_bytes());
        c.extend_from_slice(&20u64.to_be_bytes());
        c.extend_from_slice(&30i64.to_be_bytes());
        assert!(matches!(
            decode(&c).unwrap(),
            Message::Commit {
                end_lsn: Lsn(20),
                ..
            }
        ));
        let mut t = vec![b'T'];
        t.extend_from_slice(&1u32.to_be_bytes());
        t.push(0);
        t.extend_from_slice(&9u32.to_be_bytes());
        let mut d = Decoder::new();
        d.apply(
            decode(&relation(9, "carts", &["cart_id", "quantity"])).unwrap(),
            Lsn(1),
            &mut vec![],
        )
        .unwrap();
        let mut out = vec![];
        d.apply(decode(&t).unwrap(), Lsn(2), &mut out).unwrap();
        assert_eq!(out[0].kind, ChangeKind::Truncate);
        assert_eq!(out[0].table, Table::Carts);
        assert!(matches!(
            decode(&c[..5]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn rows_map_by_column_name() {
        let mut d = Decoder::new();
        // Columns in another order than ours, plus one we do not know.
        let cols = [
            "price",
            "extra",
            "quantity",
            "order_item_id",
            "order_id",
            "product_id",
        ];
        d.apply(
            decode(&relation(5, "order_items", &cols)).unwrap(),
            Lsn(1),
            &mut vec![],
        )
        .unwrap();
        let mut ins = vec![b'I'];
        ins.extend_from_slice(&5u32.to_be_bytes());
        ins.push(b'N');
        tuple(
            &mut ins,
            &[
                Some("2358.73"),
                Some("x"),
                Some("2"),
                Some("11"),
                Some("4"),
                None,
            ],
        );
        let mut out = vec![];
        d.apply(decode(&ins).unwrap(), Lsn(100), &mut out).unwrap();
        let ChangeKind::Upsert {
            row: Row::OrderItem(it),
            ..
        } = &out[0].kind
        else {
            panic!("{out:?}")
        };
        assert_eq!(it.order_item_id, 11);
        assert_eq!(it.price, Money(235873));
        assert_eq!(it.product_id, None);
        assert_eq!(out[0].lsn, Some(Lsn(100)));
        assert_eq!(out[0].op, Op::Create);
    }

    #[test]
    fn update_with_key_change_and_toast_and_delete() {
        let mut d = Decoder::new();
        d.apply(
            decode(&relation(5, "order_items", &ITEM_COLS)).unwrap(),
            Lsn(1),
            &mut vec![],
        )
        .unwrap();
        let mut up = vec![b'U'];
        up.extend_from_slice(&5u32.to_be_bytes());
        up.push(b'O');
        tuple(
            &mut up,
            &[Some("1"), Some("4"), Some("5"), Some("2"), Some("3.00")],
        );
        up.push(b'N');
        tuple(
            &mut up,
            &[Some("2"), Some("4"), Some("5"), Some("3"), Some("<u>")],
        );
        let mut out = vec![];
        d.apply(decode(&up).unwrap(), Lsn(7), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].kind, ChangeKind::Delete { key: 1 });
        let ChangeKind::Upsert {
            row: Row::OrderItem(it),
            unavailable,
        } = &out[1].kind
        else {
            panic!()
        };
        // The unchanged price came from the old row.
        assert_eq!(it.price, Money(300));
        assert!(unavailable.is_empty());

        let mut del = vec![b'D'];
        del.extend_from_slice(&5u32.to_be_bytes());
        del.push(b'K');
        tuple(&mut del, &[Some("2"), None, None, None, None]);
        let mut out = vec![];
        d.apply(decode(&del).unwrap(), Lsn(8), &mut out).unwrap();
        assert_eq!(out[0].kind, ChangeKind::Delete { key: 2 });

        // A row that cannot be typed names table and column.
        let mut bad = vec![b'I'];
        bad.extend_from_slice(&5u32.to_be_bytes());
        bad.push(b'N');
        tuple(&mut bad, &[Some("3"), None, None, Some("1"), Some("NaN")]);
        let e = d
            .apply(decode(&bad).unwrap(), Lsn(9), &mut vec![])
            .unwrap_err();
        assert!(e.to_string().contains("order_items.price"), "{e}");
        // Unknown relation.
        let mut ins = vec![b'I'];
        ins.extend_from_slice(&6u32.to_be_bytes());
        ins.push(b'N');
        tuple(&mut ins, &[Some("1")]);
        assert!(matches!(
            d.apply(decode(&ins).unwrap(), Lsn(9), &mut vec![]),
            Err(ChangeError::Decode(DecodeError::UnknownRelation(6)))
        ));
    }
}

//! Exact decoding of the decimal encodings Kafka Connect / Debezium use for `NUMERIC` columns:
//! JSON number text (`decimal.handling.mode=double`, printed by Java: `1.0269E7`), decimal
//! strings (`string`), and base64 big-endian two's-complement unscaled bytes (`precise`, Connect's
//! `Decimal` logical type and Debezium's `VariableScaleDecimal` struct).
//!
//! Owns only these text/byte forms → [`Money`]. Must not know about envelopes or tables; never
//! goes through `f64`.

use crate::types::{Money, MoneyError};
use base64::Engine as _;

/// Why a decimal could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("bad base64 {0:?}")]
    Base64(String),
    #[error("unscaled value of {0} bytes does not fit 128 bits")]
    TooWide(usize),
    #[error("negative or absurd scale {0}")]
    Scale(i64),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The unscaled integer of Connect's `Decimal`: big-endian two's complement, any length up to
/// 16 bytes (longer inputs are accepted when the extra leading bytes are pure sign extension).
pub fn unscaled_from_be(bytes: &[u8]) -> Result<i128, DecimalError> {
    let Some(&first) = bytes.first() else {
        // Connect never writes zero bytes for a value; an empty array can only mean 0.
        return Ok(0);
    };
    let negative = first & 0x80 != 0;
    let sign_byte = if negative { 0xFF } else { 0x00 };
    let mut b = bytes;
    while b.len() > 16 && b[0] == sign_byte {
        b = &b[1..];
    }
    if b.len() > 16 {
        return Err(DecimalError::TooWide(bytes.len()));
    }
    let mut acc: i128 = if negative { -1 } else { 0 };
    for &x in b {
        acc = (acc << 8) | x as i128;
    }
    Ok(acc)
}

/// Money from base64 unscaled bytes at `scale` (`"A5lh"` at scale 2 = 2358.73).
pub fn money_from_base64(text: &str, scale: i64) -> Result<Money, DecimalError> {
    // Unscaled values of NUMERIC(14,2) need ≤ 6 bytes; the buffer covers 16 without allocating.
    let mut buf = [0u8; 48];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(text.as_bytes(), &mut buf)
        .map_err(|_| DecimalError::Base64(text.chars().take(64).collect()))?;
    money_from_unscaled(unscaled_from_be(&buf[..n])?, scale)
}

/// `unscaled × 10^-scale` as money; negative scales (allowed by `BigDecimal`) multiply.
pub fn money_from_unscaled(unscaled: i128, scale: i64) -> Result<Money, DecimalError> {
    if scale >= 0 {
        let scale = u32::try_from(scale).map_err(|_| DecimalError::Scale(scale))?;
        if scale > 60 {
            return Err(DecimalError::Scale(scale as i64));
        }
        Ok(Money::from_unscaled(unscaled, scale)?)
    } else {
        if scale < -38 {
            return Err(DecimalError::Scale(scale));
        }
        let v = 10i128
            .checked_pow((-scale) as u32)
            .and_then(|m| unscaled.checked_mul(m))
            .ok_or_else(|| MoneyError::Range(format!("{unscaled}e{}", -scale)))?;
        Ok(Money::from_unscaled(v, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_twos_complement() {
        assert_eq!(money_from_base64("A5lh", 2), Ok(Money(235873)));
        // -235873 = 0xFC669F
        assert_eq!(money_from_base64("/Gaf", 2), Ok(Money(-235873)));
        assert_eq!(money_from_base64("AA==", 2), Ok(Money(0)));
        assert_eq!(money_from_base64("/w==", 2), Ok(Money(-1)));
        assert_eq!(money_from_base64("gA==", 0), Ok(Money(-12800)));
        assert_eq!(
            money_from_base64("A5lh", 3),
            Err(DecimalError::Money(MoneyError::Precision(
                "235873e-3".into()
            )))
        );
        assert!(money_from_base64("not base64!", 2).is_err());
        assert_eq!(money_from_unscaled(5, -2), Ok(Money(50000)));
        let mut long = vec![0u8; 20];
        long[19] = 7;
        assert_eq!(unscaled_from_be(&long), Ok(7));
        long[0] = 1;
        assert!(unscaled_from_be(&long).is_err());
    }
}

//! Shamir secret sharing over GF(2^8) with the AES polynomial, as sops
//! splits a data key across key groups (sops-format.md §7.3).

fn multiply(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1B;
        }
        b >>= 1;
    }
    product
}

fn inverse(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8).
    let mut result = 1;
    for _ in 0..254 {
        result = multiply(result, a);
    }
    result
}

/// Recover the secret from shares (each: the values, then its x byte).
pub fn combine(shares: &[Vec<u8>]) -> Option<Vec<u8>> {
    let length = shares.first()?.len().checked_sub(1)?;
    if shares.iter().any(|s| s.len() != length + 1) {
        return None;
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[length]).collect();
    let mut secret = vec![0u8; length];
    for (byte, out) in secret.iter_mut().enumerate() {
        let mut value = 0;
        for (i, share) in shares.iter().enumerate() {
            // Lagrange basis at x = 0: prod x_j / (x_j - x_i), minus is xor.
            let mut basis = 1;
            for (j, x_j) in xs.iter().enumerate() {
                if i != j {
                    basis = multiply(basis, multiply(*x_j, inverse(x_j ^ xs[i])));
                }
            }
            value ^= multiply(share[byte], basis);
        }
        *out = value;
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_of_two_shares_recover_the_secret() {
        // f(x) = 0x53 + 0xCA·x: shares at x = 1 and 2.
        let share1 = vec![0x53 ^ multiply(0xCA, 1), 1];
        let share2 = vec![0x53 ^ multiply(0xCA, 2), 2];
        assert_eq!(combine(&[share1, share2]), Some(vec![0x53]));
    }
}

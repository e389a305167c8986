//! Shamir secret sharing over GF(2^8) with the AES polynomial, as sops
//! splits a data key across key groups (sops-format.md §7.3).

use zeroize::Zeroizing;

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

/// Split a secret into `count` shares, any `threshold` of which recover it:
/// share i holds the values at x = i + 1 of one random polynomial per byte
/// (degree `threshold - 1`, the byte as constant term), then x itself.
pub fn split(secret: &[u8], count: usize, threshold: usize) -> Vec<Zeroizing<Vec<u8>>> {
    let degree = threshold.clamp(1, count.max(1)) - 1;
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (1..=count)
        .map(|_| Zeroizing::new(Vec::with_capacity(secret.len() + 1)))
        .collect();
    for byte in secret {
        let mut coefficients = Zeroizing::new(vec![*byte]);
        coefficients.extend((0..degree).map(|_| rand::random::<u8>()));
        for (index, share) in shares.iter_mut().enumerate() {
            let x = u8::try_from(index + 1).unwrap_or(u8::MAX);
            // Horner: ((c_d·x + c_{d-1})·x + …)·x + c_0.
            let value = coefficients
                .iter()
                .rev()
                .fold(0, |acc, c| multiply(acc, x) ^ c);
            share.push(value);
        }
    }
    for (index, share) in shares.iter_mut().enumerate() {
        share.push(u8::try_from(index + 1).unwrap_or(u8::MAX));
    }
    shares
}

/// Recover the secret from shares (each: the values, then its x byte).
pub(crate) fn combine<S: AsRef<[u8]>>(shares: &[S]) -> Option<Zeroizing<Vec<u8>>> {
    let length = shares.first()?.as_ref().len().checked_sub(1)?;
    if shares.iter().any(|s| s.as_ref().len() != length + 1) {
        return None;
    }
    let xs: Vec<u8> = shares.iter().map(|s| s.as_ref()[length]).collect();
    if (1..xs.len()).any(|i| xs[..i].contains(&xs[i])) {
        return None;
    }
    let mut secret = Zeroizing::new(vec![0u8; length]);
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
            value ^= multiply(share.as_ref()[byte], basis);
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
        assert_eq!(combine(&[share1, share2]).unwrap().as_slice(), [0x53]);
    }

    #[test]
    fn any_threshold_of_the_split_shares_recover_the_secret() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 3, 2);
        assert!(shares.iter().all(|s| s.len() == 33));
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let chosen = [shares[pair[0]].clone(), shares[pair[1]].clone()];
            assert_eq!(combine(&chosen).unwrap().as_slice(), secret.as_slice());
        }
        assert_ne!(combine(&shares[..1]).unwrap().as_slice(), secret.as_slice());
    }
}

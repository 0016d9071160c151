//! The RMCP+ algorithms of cipher suites 3 and 17 (IPMI v2.0 §13.28–13.32), on RustCrypto.
//!
//! | suite | authentication (RAKP) | integrity | confidentiality |
//! |---|---|---|---|
//! | 3 | RAKP-HMAC-SHA1 (1) | HMAC-SHA1-96 (1) | AES-CBC-128 (1) |
//! | 17 | RAKP-HMAC-SHA256 (3) | HMAC-SHA256-128 (4) | AES-CBC-128 (1) |
//!
//! Keys: Kuid is the user's password (at most 20 bytes; HMAC pads it with zeros, exactly as
//! the 20-byte zero-padded key of the specification). Without a BMC key (KG), KG = Kuid.
//!
//! - SIK = HMAC_KG(Rm | Rc | ROLEm | ULENGTHm | UNAMEm)
//! - K1 = HMAC_SIK(20 × 0x01), K2 = HMAC_SIK(20 × 0x02) (20-byte constants for both hashes)
//! - integrity AuthCode = HMAC_K1(packet from the authentication type through next header),
//!   truncated to 12 (SHA1) or 16 (SHA256) bytes
//! - AES key = the first 16 bytes of K2; payload = IV | AES-CBC(data | 1, 2, … N | N).

use aes::Aes128;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::packet::Malformed;
use super::CipherSuite;

/// AES block size.
pub const AES_BLOCK: usize = 16;

fn mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length; the error branch cannot happen. An empty code never
    // verifies, so even then nothing would be accepted.
    let Ok(mut m) = <M as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// HMAC with the suite's hash (SHA1: 20 bytes, SHA256: 32 bytes) over the concatenated parts.
pub fn hmac(suite: CipherSuite, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match suite {
        CipherSuite::Three => mac::<Hmac<Sha1>>(key, parts),
        CipherSuite::Seventeen => mac::<Hmac<Sha256>>(key, parts),
    }
}

/// Equality without an early exit (for authentication codes).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Length of the RAKP 2/3 key exchange authentication codes (full HMAC).
pub fn rakp_code_len(suite: CipherSuite) -> usize {
    match suite {
        CipherSuite::Three => 20,
        CipherSuite::Seventeen => 32,
    }
}

/// Length of the RAKP 4 integrity check value and of every packet's AuthCode.
pub fn icv_len(suite: CipherSuite) -> usize {
    match suite {
        CipherSuite::Three => 12,
        CipherSuite::Seventeen => 16,
    }
}

/// What both sides feed into the RAKP codes and the session keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RakpInputs<'a> {
    pub suite: CipherSuite,
    /// Kuid: the user's password.
    pub kuid: &'a [u8],
    /// The remote console's session id (SIDm).
    pub console_sid: u32,
    /// The BMC's session id (SIDc).
    pub bmc_sid: u32,
    /// Remote console random number (Rm).
    pub rm: [u8; 16],
    /// BMC random number (Rc).
    pub rc: [u8; 16],
    /// BMC GUID (GUIDc).
    pub guid: [u8; 16],
    /// The whole requested-role byte of RAKP 1 (privilege and name-only lookup bit).
    pub role: u8,
    pub user: &'a [u8],
}

impl RakpInputs<'_> {
    fn ulen(&self) -> [u8; 1] {
        [u8::try_from(self.user.len()).unwrap_or(u8::MAX)]
    }

    /// RAKP 2: HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENGTHm, UNAMEm).
    pub fn rakp2_code(&self) -> Vec<u8> {
        hmac(
            self.suite,
            self.kuid,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.rm,
                &self.rc,
                &self.guid,
                &[self.role],
                &self.ulen(),
                self.user,
            ],
        )
    }

    /// RAKP 3: HMAC_Kuid(Rc, SIDm, ROLEm, ULENGTHm, UNAMEm).
    pub fn rakp3_code(&self) -> Vec<u8> {
        hmac(self.suite, self.kuid, &[&self.rc, &self.console_sid.to_le_bytes(), &[self.role], &self.ulen(), self.user])
    }

    /// SIK = HMAC_KG(Rm, Rc, ROLEm, ULENGTHm, UNAMEm), with KG = Kuid.
    pub fn sik(&self) -> Vec<u8> {
        hmac(self.suite, self.kuid, &[&self.rm, &self.rc, &[self.role], &self.ulen(), self.user])
    }

    /// RAKP 4: HMAC_SIK(Rm, SIDc, GUIDc), truncated to the integrity length.
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut v = hmac(self.suite, sik, &[&self.rm, &self.bmc_sid.to_le_bytes(), &self.guid]);
        v.truncate(icv_len(self.suite));
        v
    }
}

/// The session keys derived from the SIK.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub sik: Vec<u8>,
    /// Integrity key.
    pub k1: Vec<u8>,
    /// First 16 bytes of K2.
    pub aes: [u8; 16],
}

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn derive(suite: CipherSuite, sik: Vec<u8>) -> Keys {
        let k1 = hmac(suite, &sik, &[&[0x01; 20]]);
        let k2 = hmac(suite, &sik, &[&[0x02; 20]]);
        let mut aes = [0u8; 16];
        if let Some(k) = k2.get(..16) {
            aes.copy_from_slice(k);
        }
        Keys { sik, k1, aes }
    }

    /// The AuthCode of the integrity-protected bytes, truncated for the suite.
    pub fn auth_code(&self, suite: CipherSuite, data: &[u8]) -> Vec<u8> {
        let mut v = hmac(suite, &self.k1, &[data]);
        v.truncate(icv_len(suite));
        v
    }

    /// Appends IV | AES-CBC-128(plain | 1, 2, … N | N) to `out`.
    pub fn encrypt(&self, iv: [u8; 16], plain: &[u8], out: &mut Vec<u8>) {
        let pad = (AES_BLOCK - (plain.len() + 1) % AES_BLOCK) % AES_BLOCK;
        let mut data = Vec::with_capacity(plain.len() + pad + 1);
        data.extend_from_slice(plain);
        data.extend((1..=pad).map(|i| i as u8));
        data.push(pad as u8);
        out.extend_from_slice(&iv);
        let mut enc = cbc::Encryptor::<Aes128>::new(&self.aes.into(), &iv.into());
        for chunk in data.chunks_exact(AES_BLOCK) {
            let mut block = [0u8; AES_BLOCK];
            block.copy_from_slice(chunk);
            let mut b = block.into();
            enc.encrypt_block(&mut b);
            let b: [u8; AES_BLOCK] = b.into();
            out.extend_from_slice(&b);
        }
    }

    /// Decrypts IV | ciphertext and removes the confidentiality pad.
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, Malformed> {
        if payload.len() < 2 * AES_BLOCK || !payload.len().is_multiple_of(AES_BLOCK) {
            return Err(Malformed("encrypted payload is not IV plus whole AES blocks"));
        }
        let (iv, body) = payload.split_at(AES_BLOCK);
        let mut ivb = [0u8; AES_BLOCK];
        ivb.copy_from_slice(iv);
        let mut dec = cbc::Decryptor::<Aes128>::new(&self.aes.into(), &ivb.into());
        let mut plain = Vec::with_capacity(body.len());
        for chunk in body.chunks_exact(AES_BLOCK) {
            let mut c = [0u8; AES_BLOCK];
            c.copy_from_slice(chunk);
            let mut b = c.into();
            dec.decrypt_block(&mut b);
            let b: [u8; AES_BLOCK] = b.into();
            plain.extend_from_slice(&b);
        }
        let pad = usize::from(plain.last().copied().unwrap_or(0));
        if pad >= AES_BLOCK || pad + 1 > plain.len() {
            return Err(Malformed("confidentiality pad length"));
        }
        let data_len = plain.len() - pad - 1;
        let pad_ok = plain.get(data_len..plain.len() - 1).is_some_and(|p| p.iter().zip(1u8..).all(|(b, i)| *b == i));
        if !pad_ok {
            return Err(Malformed("confidentiality pad bytes"));
        }
        plain.truncate(data_len);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn hmac_sha1_and_sha256_rfc_vectors() {
        // RFC 2202 case 2 and RFC 4231 case 2.
        assert_eq!(
            hmac(CipherSuite::Three, b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        assert_eq!(
            hmac(CipherSuite::Seventeen, b"Jefe", &[b"what do ya want for nothing?"]),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn aes_cbc_with_ipmi_pad_matches_an_independent_implementation() {
        // Expected bytes from Python's `cryptography` (AES-CBC over the IPMI-padded data).
        let keys = Keys { sik: vec![], k1: vec![], aes: hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap() };
        let data = hex("00112233445566778899aabbccddeeff0102");
        let mut out = Vec::new();
        keys.encrypt([0xa5; 16], &data, &mut out);
        assert_eq!(&out[..16], &[0xa5; 16]);
        assert_eq!(&out[16..], &hex("098262017fff359caf2b6dcc0552f973c197ffa263391190a8c0f4968ae49476")[..]);
        assert_eq!(keys.decrypt(&out).unwrap(), data);
        for n in 0..40 {
            let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(7)).collect();
            let mut out = Vec::new();
            keys.encrypt([n as u8; 16], &data, &mut out);
            assert_eq!(out.len() % 16, 0);
            assert_eq!(keys.decrypt(&out).unwrap(), data);
        }
    }

    #[test]
    fn decrypt_refuses_bad_padding_and_lengths() {
        let keys = Keys { sik: vec![], k1: vec![], aes: [7; 16] };
        assert!(keys.decrypt(&[0; 16]).is_err());
        assert!(keys.decrypt(&[0; 33]).is_err());
        // Craft a block whose plaintext ends in pad length 15 but wrong pad bytes.
        let mut out = Vec::new();
        keys.encrypt([1; 16], &[9; 15], &mut out); // pad 0
        let mut tampered = out.clone();
        tampered[15] ^= 0x0f; // flips the last plaintext byte (pad length) to 15
        assert_eq!(keys.decrypt(&tampered).unwrap_err(), Malformed("confidentiality pad bytes"));
        tampered[15] ^= 0xff; // pad length 0xf0
        assert_eq!(keys.decrypt(&tampered).unwrap_err(), Malformed("confidentiality pad length"));
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}

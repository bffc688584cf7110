//! `license-vendor keygen`, `issue`, `hash-secret` and `check-receipt` (`ledger-heads` is in
//! [`super::vendor_heads`]).

use std::io::Write;

use anyhow::{Context, bail};
use models::{License, ProductRule, Rules};
use time::OffsetDateTime;

use super::inputs::{read_input, read_secret};
use crate::{
    auth::passwords::hash_password,
    cli::IssueArgs,
    licensing::{activation, file as license_file, identity::ServerId, keys::KeyPair, receipt},
    sys::{
        atomic_file::{self, Mode},
        data_dir::create_private_dir,
        timestamp::rfc3339,
    },
};

pub fn keygen(out_dir: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    create_private_dir(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let key = KeyPair::generate()?;
    let (private_path, public_path) = key.write_pair(out_dir)?;
    writeln!(
        out,
        "created vendor key {}\n  private key (keep it secret): {}\n  public key (for license servers' --vendor-public-key): {}",
        key.key_id(),
        private_path.display(),
        public_path.display()
    )?;
    Ok(())
}

/// Signs a license as the arguments describe and writes the file to `--out` or `out`.
pub fn issue(args: &IssueArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = KeyPair::load(&args.key)?;
    let license = license_from(args, OffsetDateTime::now_utc())?;
    let text = license_file::sign(&license, &key)?;
    match &args.out {
        Some(path) => {
            atomic_file::replace(path, text.as_bytes(), Mode::Public)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(
                out,
                "wrote {}: license {} (serial {}) for server {}",
                path.display(),
                license.key,
                license.rules.serial_number,
                license.server_id
            )?;
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Reads an account secret (see [`read_secret`]) and hashes it for the catalog.
pub fn hash_secret() -> anyhow::Result<String> {
    let secret = read_secret("secret", false)?;
    if secret.is_empty() {
        bail!("the secret is empty");
    }
    hash_password(&secret)
}

/// The server a license is for: `--server-id`, or the server that signed `--request`.
fn target_server(args: &IssueArgs) -> anyhow::Result<ServerId> {
    let (given, source) = match (&args.request, &args.server_id) {
        (Some(file), _) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let (request, signer) = activation::verify(&bytes)
                .with_context(|| format!("{} is refused", file.display()))?;
            if let Some(network) = &request.network {
                network
                    .check(&request.server_id, &signer)
                    .map_err(|why| anyhow::anyhow!("{} is refused: {why}", file.display()))?;
            }
            (request.server_id, "the activation request's serverId")
        }
        (None, Some(id)) => (id.trim().to_owned(), "--server-id"),
        (None, None) => bail!("give --server-id or --request"),
    };
    ServerId::parse(given.clone()).map_err(|_| {
        anyhow::anyhow!(
            "{source} {given:?} is not a server id (uppercase hex, as `license-server server-id` \
             prints it)"
        )
    })
}

fn license_from(args: &IssueArgs, now: OffsetDateTime) -> anyhow::Result<License> {
    let server_id = target_server(args)?;
    let mut products = Vec::new();
    if let (Some(product_id), Some(product)) = (args.product_id, &args.product) {
        products.push(ProductRule {
            product_id,
            major_version: args.major_version,
            product: product.clone(),
            runcount: args.runcount,
            credits: args.credits,
            postpay: args.postpay,
        });
    }
    products.extend(args.product_specs.iter().cloned());
    if products.is_empty() {
        bail!(
            "no product: give --product-id, --product (and --runcount/--credits) or --product-spec"
        );
    }
    if let Some(expires) = args.expires
        && expires <= now
    {
        bail!(
            "--expires {} is in the past; the license would be refused everywhere",
            rfc3339(expires)
        );
    }
    let serial_number = match args.serial {
        Some(serial) => serial,
        None => random_below(900_000_000)? + 100_000_000,
    };
    let key = match &args.license_key {
        Some(key) => key.clone(),
        None => random_license_key()?,
    };
    Ok(License {
        key,
        server_id: server_id.to_string(),
        rules: Rules {
            serial_number,
            // Whole seconds: people read these files.
            issued: now.replace_nanosecond(0).unwrap_or(now),
            expires: args.expires,
            max_users: args.max_users,
            products,
        },
    })
}

/// Letters and digits that cannot be mistaken for each other when read aloud or typed
/// (no 0/O, 1/I/L, 5/S, 8/B).
const KEY_ALPHABET: &[u8] = b"2345679ACDEFGHJKMNPQRTUVWXYZ";

/// `XXXX-XXXX-XXXX-XXXX` from the OS CSPRNG: 16 symbols of 28, about 77 bits.
fn random_license_key() -> anyhow::Result<String> {
    let mut key = String::new();
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            key.push('-');
        }
        let index = random_below(KEY_ALPHABET.len() as u64)?;
        key.push(char::from(KEY_ALPHABET[usize::try_from(index)?]));
    }
    Ok(key)
}

/// Uniform in `0..bound`, by rejection sampling (no modulo bias).
fn random_below(bound: u64) -> anyhow::Result<u64> {
    let zone = u64::MAX - u64::MAX % bound;
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| {
            anyhow::anyhow!("the operating system's random number generator failed: {e}")
        })?;
        let n = u64::from_le_bytes(bytes);
        if n < zone {
            return Ok(n % bound);
        }
    }
}

/// `license-vendor check-receipt FILE`.
pub fn check_receipt(file: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let bytes = read_input(file)?;
    let (receipt, signer) = receipt::verify(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is refused: {e}", file.display()))?;
    writeln!(
        out,
        "valid deactivation receipt: server {} gave back license {} (serial {}) at {}\n  \
         license file sha256 {}\n  signed by the server key {} (it must be the public_key of the \
         activation request this license was issued for)",
        receipt.server_id,
        receipt.key,
        receipt.serial_number,
        receipt.deactivated,
        receipt.license_sha256,
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            signer.as_bytes()
        ),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_are_well_formed_and_differ() {
        let a = random_license_key().unwrap();
        let b = random_license_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
        assert_eq!(a.matches('-').count(), 3);
        license_file::check_key(&a).unwrap();
    }
}

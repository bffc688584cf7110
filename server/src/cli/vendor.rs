//! The options of `vendor ...`: keys, license files and the vendor licensing service.

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use super::log::LogArgs;

/// The vendor's program, which customers never get: signing keys, license files, and the
/// licensing service.
#[derive(Debug, Parser)]
#[command(
    name = "license-vendor",
    version,
    about = "The vendor's tools: signing keys, license files, the licensing service"
)]
pub struct VendorCli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: VendorCommand,
}

#[derive(Debug, Subcommand)]
pub enum VendorCommand {
    /// Create a vendor keypair: DIR/vendor.key (private, mode 0600) and DIR/vendor.pub (give this
    /// one to license servers). Never overwrites.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
    /// Issue a signed license file bound to one license server.
    Issue(Box<IssueArgs>),
    /// Run the vendor licensing service: customer accounts log in, list their licenses and
    /// activate them for their license servers.
    Serve(VendorServeArgs),
    /// Hash an account secret for the catalog (read from standard input, or prompted for).
    HashSecret,
    /// Check a server's deactivation receipt (`license-server license deactivate`) and print what
    /// it says and which server key signed it. Exit status 1 if it is not valid.
    CheckReceipt {
        /// The receipt file; `-` reads standard input.
        file: PathBuf,
    },
    /// The ledger heads license servers reported to the licensing service, each server's
    /// status, and any server whose ledger history was rewritten or cut short.
    LedgerHeads {
        /// The licensing service's data directory (`serve --data-dir`).
        #[arg(long, env = "LICENSE_VENDOR_DATA_DIR", default_value = "./vendor-data")]
        data_dir: PathBuf,
        /// One server: every head it reported, and its usage as of the newest.
        #[arg(long, value_name = "ID")]
        server_id: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct VendorServeArgs {
    /// The vendor's private key, which signs the issued license files.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The accounts and their licenses (TOML; see examples/catalog.toml).
    #[arg(long, value_name = "FILE")]
    pub catalog: PathBuf,
    #[arg(long, env = "LICENSE_VENDOR_PORT", default_value_t = 1500)]
    pub port: u16,
    #[arg(long, env = "LICENSE_VENDOR_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Where the service keeps its activations and tokens.
    #[arg(long, env = "LICENSE_VENDOR_DATA_DIR", default_value = "./vendor-data")]
    pub data_dir: PathBuf,
    /// Seconds a licensing token lives without use.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub token_timeout: u64,
    /// HTTPS: the certificate chain (PEM, the service's certificate first). Reloaded on SIGHUP
    /// and when the file changes.
    #[arg(
        long,
        env = "LICENSE_VENDOR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, RSA or EC).
    #[arg(
        long,
        env = "LICENSE_VENDOR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Products: either --product-id/--major-version/--product with --runcount, --credits, --postpay for
one product, or --product-spec once per product (both may be combined):

  --product-spec \"ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]\"
  e.g. --product-spec \"1000:10:callas pdfToolbox CLI:8:0\" --product-spec \"1000:0:callas pdfToolbox CLI:0:100000:postpay\"

MAJOR 0 means any version. NAME may itself contain ':'.")]
pub struct IssueArgs {
    /// The vendor's private key (from `license-vendor keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The server the license is for, as `license-server server-id` prints it.
    #[arg(long, required_unless_present = "request", conflicts_with = "request")]
    pub server_id: Option<String>,
    /// An offline activation request from the server (`GET /server/manage/license/create`):
    /// its signature is checked and the license is bound to the server it names.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    #[arg(long, value_name = "N", requires = "product")]
    pub product_id: Option<u32>,
    /// Major version the license covers; 0 = any.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "product_id")]
    pub major_version: u32,
    /// Product name, as the status page shows it.
    #[arg(long, value_name = "NAME", requires = "product_id")]
    pub product: Option<String>,
    /// Processes that may run at once.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "product_id")]
    pub runcount: u32,
    /// Prepaid credits (one credit = one second of processing).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "product_id")]
    pub credits: u64,
    /// Credits may be used beyond those loaded and are billed afterwards.
    #[arg(long, requires = "product_id")]
    pub postpay: bool,
    /// Another product, as ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]; repeatable.
    #[arg(long = "product-spec", value_name = "SPEC", value_parser = parse_product_spec)]
    pub product_specs: Vec<models::ProductRule>,
    /// How many distinct licensed users there may be (default: no limit).
    #[arg(long, value_name = "N")]
    pub max_users: Option<u32>,
    /// When the license stops counting, RFC 3339 (e.g. 2027-12-31T23:59:59Z). Default: never.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub expires: Option<time::OffsetDateTime>,
    /// The cartridge's serial number (default: a random 9-digit number).
    #[arg(long, value_name = "N")]
    pub serial: Option<u64>,
    /// The license key (default: a random key like 7KQ2-M9XD-4HTA-PW3C).
    #[arg(long, value_name = "KEY")]
    pub license_key: Option<String>,
    /// Where to write the license file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The licensing service's data directory (`serve --data-dir`): the ledger head the
    /// `--request` carries is recorded there and checked against the server's earlier heads
    /// (see `ledger-heads`).
    #[arg(long, value_name = "DIR", requires = "request")]
    pub vendor_data_dir: Option<PathBuf>,
}

/// `ID:MAJOR:NAME:RUNCOUNT:CREDITS[:postpay]`. Numbers are read from both ends, so the name in the
/// middle may contain colons.
pub fn parse_product_spec(spec: &str) -> Result<models::ProductRule, String> {
    let usage = "expected ID:MAJOR:NAME:RUNCOUNT:CREDITS or ID:MAJOR:NAME:RUNCOUNT:CREDITS:postpay";
    let mut fields: Vec<&str> = spec.split(':').collect();
    let postpay = fields.last() == Some(&"postpay");
    if postpay {
        fields.pop();
    }
    if fields.len() < 5 {
        return Err(format!("{spec:?}: {usage}"));
    }
    let number = |what: &str, text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            format!("{spec:?}: {what} {text:?} is not a non-negative integer ({usage})")
        })
    };
    let small = |what: &str, text: &str| {
        number(what, text)
            .and_then(|n| u32::try_from(n).map_err(|_| format!("{spec:?}: {what} is too large")))
    };
    let credits = number("CREDITS", fields[fields.len() - 1])?;
    let runcount = small("RUNCOUNT", fields[fields.len() - 2])?;
    Ok(models::ProductRule {
        product_id: small("ID", fields[0])?,
        major_version: small("MAJOR", fields[1])?,
        product: fields[2..fields.len() - 2].join(":"),
        runcount,
        credits,
        postpay,
    })
}

fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time such as 2027-12-31T23:59:59Z ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_specs_read_numbers_from_both_ends() {
        let rule = parse_product_spec("1000:10:callas: pdfToolbox CLI:8:250:postpay").unwrap();
        assert_eq!(
            (rule.product_id, rule.major_version, rule.product.as_str()),
            (1000, 10, "callas: pdfToolbox CLI")
        );
        assert_eq!((rule.runcount, rule.credits, rule.postpay), (8, 250, true));
        let rule = parse_product_spec("7:0:Tool:0:100").unwrap();
        assert_eq!((rule.runcount, rule.credits, rule.postpay), (0, 100, false));
        for bad in [
            "7:0:Tool:0",
            "x:0:Tool:0:1",
            "7:0:Tool:-1:1",
            "7:0:Tool:1:1:prepaid",
        ] {
            let err = parse_product_spec(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}

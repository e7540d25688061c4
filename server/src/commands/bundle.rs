//! `authz bundle`: build, sign, verify bundles and make their keys (see `host::bundle` for the
//! format and what servers check).

use std::path::Path;

use super::Outcome;
use crate::cli::{BundleArgs, BundleCommand};
use crate::host::{bundle, state};

/// Runs one bundle subcommand.
pub fn run(args: &BundleArgs) -> Outcome {
    let done = match &args.command {
        BundleCommand::Build {
            dir,
            entities,
            output,
            revision,
        } => build(dir, entities.as_deref(), output, revision.as_deref()),
        BundleCommand::Sign {
            bundle,
            key,
            output,
        } => sign(bundle, key, output.as_deref().unwrap_or(bundle)),
        BundleCommand::Keygen { out } => keygen(out),
        BundleCommand::Verify { bundle, public_key } => verify(bundle, public_key),
    };
    match done {
        Ok(()) => Outcome::Success,
        Err(message) => {
            eprintln!("error: {message}");
            Outcome::Failure
        }
    }
}

fn build(
    dir: &Path,
    entities: Option<&Path>,
    output: &Path,
    revision: Option<&str>,
) -> Result<(), String> {
    // A set that does not compile is never bundled.
    if let Err(error) = state::load(dir, entities) {
        eprint!("{}", error.message);
        return Err("the policy set does not load; no bundle written".to_string());
    }
    let text = bundle::build(dir, entities, revision.unwrap_or(""))?;
    let text = match revision {
        Some(_) => text,
        // The default revision names the content: the first 16 hex digits of the SHA-256 of
        // the manifest built without one.
        None => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
            let named: String = digest
                .as_ref()
                .iter()
                .take(8)
                .map(|byte| format!("{byte:02x}"))
                .collect();
            bundle::build(dir, entities, &named)?
        }
    };
    write(output, &text)?;
    println!(
        "wrote {} (unsigned: sign it with `authz bundle sign`)",
        output.display()
    );
    Ok(())
}

fn sign(input: &Path, key: &Path, output: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(input)
        .map_err(|error| format!("cannot read {}: {error}", input.display()))?;
    let key =
        std::fs::read(key).map_err(|error| format!("cannot read {}: {error}", key.display()))?;
    let signed = bundle::sign(&text, &key)?;
    write(output, &signed)?;
    println!("signed {}", output.display());
    Ok(())
}

fn keygen(out: &Path) -> Result<(), String> {
    if out.exists() {
        return Err(format!("{} exists; not overwriting a key", out.display()));
    }
    let (private, public) = bundle::keygen()?;
    write(out, &private)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| format!("cannot restrict {}: {error}", out.display()))?;
    }
    println!("{public}");
    Ok(())
}

fn verify(input: &Path, public_key: &str) -> Result<(), String> {
    let bytes = std::fs::read(input)
        .map_err(|error| format!("cannot read {}: {error}", input.display()))?;
    let key = bundle::public_key(public_key)?;
    let verified = bundle::verify(&bytes, &key).map_err(|error| error.to_string())?;
    bundle::snapshot(&verified).map_err(|error| {
        eprint!("{}", error.message);
        "the bundle's policy set does not load".to_string()
    })?;
    println!(
        "ok: revision {}, {} policy files{}",
        verified.revision,
        verified.policies.len(),
        if verified.entities.is_some() {
            ", entities"
        } else {
            ""
        }
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

//! Writes the format test vectors to `ledger-format/vectors/`.
//!
//! `cargo run --example gen_vectors`; the test `format_vectors` fails when the
//! committed files differ from what this produces.

#[path = "support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-format/vectors");
    std::fs::create_dir_all(&dir)?;
    for (name, value) in vectors::all() {
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        std::fs::write(dir.join(&name), text)?;
        println!("wrote ledger-format/vectors/{name}");
    }
    Ok(())
}

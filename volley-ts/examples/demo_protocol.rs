//! Writes the TypeScript module of volley's demo protocol (the one
//! `cargo run --example server` serves) into the TypeScript client's
//! package, or checks that the committed one is up to date.
//!
//! ```text
//! cargo run -p volley-net-ts --example demo_protocol            # writes it
//! cargo run -p volley-net-ts --example demo_protocol -- --check # fails if stale
//! ```

#[path = "../../volley/examples/shared/protocol.rs"]
mod shared;

use std::path::Path;

const OUT: &str = "clients/typescript/examples/demo_protocol.ts";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = volley_ts::Options::default().with_runtime("../src/index.js");
    let module = volley_ts::typescript(&shared::protocol(), &options)?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(OUT);
    if std::env::args().any(|a| a == "--check") {
        let committed = std::fs::read_to_string(&out).unwrap_or_default();
        if committed != module {
            return Err(format!("{OUT} is stale: run `cargo run -p volley-net-ts --example demo_protocol`").into());
        }
        println!("{OUT} is up to date");
        return Ok(());
    }
    std::fs::write(&out, module)?;
    println!("wrote {OUT}");
    Ok(())
}

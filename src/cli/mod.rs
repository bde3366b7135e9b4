//! The `gradlab` command line.

use anyhow::Result;

pub fn run() -> Result<()> {
    Ok(())
}

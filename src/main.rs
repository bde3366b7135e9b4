fn main() -> anyhow::Result<()> {
    gradlab::cli::run()
}

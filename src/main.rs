use std::process::ExitCode;

fn main() -> ExitCode {
    match gradlab::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                msg += &format!(": {cause}");
            }
            eprintln!("gradlab: {msg}");
            ExitCode::FAILURE
        }
    }
}

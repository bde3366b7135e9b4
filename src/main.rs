use std::process::ExitCode;

fn main() -> ExitCode {
    match gradlab::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and each of its causes once (many errors already print their
            // source in their own message).
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !msg.contains(&text) {
                    msg += &format!(": {text}");
                }
            }
            eprintln!("gradlab: {msg}");
            ExitCode::FAILURE
        }
    }
}

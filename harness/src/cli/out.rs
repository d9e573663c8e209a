//! Printing that keeps going when stdout or stderr is closed (`rebound run ... | head`), with passwords
//! in URLs masked (`rebound::redact`): the run and its
//! clean-up matter more than the summary, and a panic would skip neither but look like a bug.

/// `println!` tolerant of a closed stdout.
macro_rules! out {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{}", rebound::redact::redact(&format!($($arg)*)));
    }};
}

/// `print!` with the same tolerance.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), "{}", rebound::redact::redact(&format!($($arg)*)));
    }};
}

/// `eprintln!` with the same tolerance and masking: error lines quote scenario values (a
/// service URL, a worker's command line) that may carry a password.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{}", rebound::redact::redact(&format!($($arg)*)));
    }};
}

//! What the user reads when a command fails: our sentence first, libtorch's C++ text after it
//! and without its stack frames (`RUST_BACKTRACE=1` keeps them, for a bug report).

/// The error as printed after `error: `. A libtorch error gets a sentence of ours in front
/// when nothing of ours already explains it, and loses its C++ frames.
pub fn describe(e: &anyhow::Error) -> String {
    describe_with(e, backtrace_wanted())
}

fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

fn describe_with(e: &anyhow::Error, keep_trace: bool) -> String {
    let from_torch = e
        .chain()
        .any(|c| c.downcast_ref::<tch::TchError>().is_some());
    let text = condense(&format!("{e:#}"), keep_trace);
    let ours_first = e
        .chain()
        .next()
        .is_some_and(|c| c.downcast_ref::<tch::TchError>().is_none());
    if from_torch && !ours_first {
        format!("a libtorch operation failed: {text}")
    } else {
        text
    }
}

/// libtorch's message without the "Exception raised from … frame #N" trace that follows it,
/// unless `keep_trace`.
fn condense(text: &str, keep_trace: bool) -> String {
    if keep_trace {
        return text.to_string();
    }
    // A panic from tch's unwrapping wrappers carries the message Debug-formatted: its line
    // breaks are the two characters `\n`, so the trace starts at the escaped form.
    let text = match text.find("\\nException raised from") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut kept = Vec::new();
    let mut in_trace = false;
    for line in text.lines() {
        let l = line.trim_start();
        if l.starts_with("Exception raised from") || l.starts_with("frame #") {
            in_trace = true;
            continue;
        }
        // A trace ends where the next message of the chain (`: …`) or a new line of text
        // starts; frames are always indented or numbered.
        if in_trace && (l.is_empty() || line.starts_with(' ')) {
            continue;
        }
        in_trace = false;
        kept.push(line);
    }
    kept.join("\n").trim_end().to_string()
}

/// Replaces Rust's panic message: a panic is a bug of ours (user data never panics), so say
/// that, where, and libtorch's text without its frames.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if backtrace_wanted() {
            return default(info);
        }
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = condense(payload, false);
        if text.contains("out of memory") || text.contains("CUDA error") {
            eprintln!(
                "error: the device ran out of resources{place} (a smaller model.image_size, \
                 train.batch_size or fewer test_transforms may fit): {text}"
            );
        } else {
            eprintln!(
                "error: adn stopped on an internal error{place}; this is a bug, please report \
                 it with the command line (RUST_BACKTRACE=1 adds a backtrace): {text}"
            );
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_text_gets_our_sentence_and_loses_its_frames() {
        let cpp = "Internal torch error: shape '[2, 3]' is invalid for input of size 5\n\
                   Exception raised from view at aten/src/ATen/native/TensorShape.cpp:123 \
                   (most recent call first):\n\
                   frame #0: c10::Error::Error() + 0x1\n\
                   frame #1: at::native::view() + 0x2\n";
        let e = anyhow::Error::new(tch::TchError::Torch(cpp.into()));
        let text = describe_with(&e, false);
        assert!(text.starts_with("a libtorch operation failed: "), "{text}");
        assert!(text.contains("is invalid for input of size 5"), "{text}");
        assert!(
            !text.contains("frame #") && !text.contains("Exception raised"),
            "{text}"
        );
        // With our context in front, that is the sentence.
        // A panic payload of tch's unwrap: the message Debug-formatted, `\n` escaped.
        let payload = format!("called `Result::unwrap()` on an `Err` value: {:?}", cpp);
        let text = condense(&payload, false);
        assert!(
            text.contains("size 5") && !text.contains("frame #"),
            "{text}"
        );
        let e = e.context("cannot score the test set");
        let text = describe_with(&e, false);
        assert!(text.starts_with("cannot score the test set: "), "{text}");
        assert!(!text.contains("frame #"), "{text}");
    }
}

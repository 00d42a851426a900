//! The line editor, key by key.

use super::*;

fn words(partial: &str) -> Vec<String> {
    let all = ["help", "hello", "ping", "sleep"];
    all.iter()
        .filter(|w| w.starts_with(partial.trim()))
        .map(|w| w.to_string())
        .collect()
}

fn typed(editor: &mut LineEditor, keys: &str) -> Vec<Action> {
    editor.feed(keys.as_bytes(), &words).1
}

#[test]
fn enter_submits_what_was_typed_after_editing() {
    let mut e = LineEditor::new("> ", 100);
    // "pigx", Backspace, Left, "n", End, Enter (CR LF counts once).
    let actions = typed(&mut e, "pigx\x7f\x1b[Dn\x1b[F\r\n");
    assert_eq!(actions, vec![Action::Submit("ping".into())]);
}

#[test]
fn up_and_down_walk_the_history() {
    let mut e = LineEditor::new("> ", 100);
    typed(&mut e, "ping\r");
    typed(&mut e, "sleep 1s\r");
    typed(&mut e, "ech");
    assert_eq!(
        typed(&mut e, "\x1b[A\x1b[A\r"),
        vec![Action::Submit("ping".into())]
    );
    typed(&mut e, "ech");
    assert_eq!(
        typed(&mut e, "\x1b[A\x1b[B\x1b[B\r"),
        vec![Action::Submit("ech".into())]
    );
}

#[test]
fn tab_completes_a_single_word_and_lists_several() {
    let mut e = LineEditor::new("> ", 100);
    assert!(typed(&mut e, "pi\t").is_empty());
    assert_eq!(typed(&mut e, "\r"), vec![Action::Submit("ping ".into())]);
    let (screen, _) = e.feed(b"he\t", &words);
    assert!(screen.ends_with("l"), "common prefix kept: {screen:?}");
    let (screen, _) = e.feed(b"\t", &words);
    assert!(screen.contains("help  hello"), "{screen:?}");
}

#[test]
fn ctrl_c_discards_the_line_and_ctrl_d_leaves_on_an_empty_one() {
    let mut e = LineEditor::new("> ", 100);
    assert_eq!(
        typed(&mut e, "pin\x03"),
        vec![Action::Interrupt { discarded: true }]
    );
    assert_eq!(
        typed(&mut e, "\x03"),
        vec![Action::Interrupt { discarded: false }]
    );
    assert_eq!(typed(&mut e, "\x04"), vec![Action::Leave]);
}

#[test]
fn a_line_past_the_limit_is_refused_at_enter_never_cut_and_run() {
    let mut e = LineEditor::new("> ", 3);
    let (screen, actions) = e.feed(b"abcdef", &words);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(screen.matches('\x07').count(), 1, "one bell: {screen:?}");
    assert_eq!(typed(&mut e, "\r"), vec![Action::TooLong]);
    // The next line starts afresh, and the refused one is not in the history.
    assert_eq!(typed(&mut e, "ab\r"), vec![Action::Submit("ab".into())]);
    assert_eq!(
        typed(&mut e, "\x1b[A\x1b[A\r"),
        vec![Action::Submit("ab".into())]
    );
    // Ctrl-C forgets an overlong line too.
    typed(&mut e, "abcdef\x03");
    assert_eq!(typed(&mut e, "x\r"), vec![Action::Submit("x".into())]);
    // A refused line (input lost before it) is refused whatever its length.
    e.refuse_line();
    assert_eq!(typed(&mut e, "ab\r"), vec![Action::TooLong]);
}

#[test]
fn a_megabyte_paste_holds_no_more_than_the_limit_and_history_is_bounded() {
    let mut e = LineEditor::new("> ", 4096);
    let paste = vec![b'x'; 1_000_000];
    let (screen, actions) = e.feed(&paste, &words);
    assert!(actions.is_empty());
    assert!(
        screen.len() < 5000,
        "echo stops at the limit: {}",
        screen.len()
    );
    assert_eq!(e.line.len(), 4096);
    assert_eq!(typed(&mut e, "\r"), vec![Action::TooLong]);
    for i in 0..HISTORY + 10 {
        typed(&mut e, &format!("echo {i}\r"));
    }
    assert_eq!(e.history.len(), HISTORY);
    assert_eq!(e.history[0], "echo 10");
    // A number in an escape sequence past u32 does not overflow (it is Up, here).
    assert!(typed(&mut e, "\x1b[99999999999999999999A").is_empty());
}

#[test]
fn output_above_keeps_the_line_being_typed() {
    let mut e = LineEditor::new("> ", 100);
    typed(&mut e, "pin");
    let screen = e.print_above("job 1 done\nok");
    assert_eq!(screen, "\r\x1b[Jjob 1 done\r\nok\r\n\r> pin\x1b[J");
}

#[test]
fn a_line_longer_than_the_terminal_is_redrawn_from_its_first_row() {
    let mut e = LineEditor::new("> ", 100);
    e.set_width(10);
    typed(&mut e, "echo abcdefghij");
    // 2 + 15 characters: the cursor is on the second row.
    assert_eq!(e.rows_above, 1);
    let screen = e.print_above("done");
    assert!(screen.starts_with("\x1b[1A\r\x1b[Jdone\r\n"), "{screen:?}");
    // Home goes up to the prompt's row, two columns in.
    let (screen, _) = e.feed(b"\x01", &words);
    assert!(screen.ends_with("\x1b[1A\r\x1b[2C"), "{screen:?}");
    assert_eq!(e.rows_above, 0);
    // Enter leaves the whole line above the answer.
    let (screen, actions) = e.feed(b"\r", &words);
    assert!(screen.ends_with("\r\x1b[7C\r\n"), "{screen:?}");
    assert_eq!(actions, vec![Action::Submit("echo abcdefghij".into())]);
}

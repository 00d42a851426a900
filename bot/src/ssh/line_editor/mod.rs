//! `LineEditor`: the command line of an interactive SSH session on a terminal.
//!
//! The client's terminal is in raw mode, so the server does what a shell's line editor
//! does: echo, cursor movement, history (Up/Down), Tab completion, and printing output
//! above the line being typed without losing it. It is pure — bytes in, screen bytes and
//! [`Action`]s out — so it is tested without a terminal.
//!
//! What it holds is bounded: the line at its length limit (a line typed or pasted past it
//! is refused at Enter, never cut and run), the history at [`HISTORY`] lines.

/// The most lines a session's history keeps; the oldest go first.
pub const HISTORY: usize = 500;

/// What a key press asks the session to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter: run this line.
    Submit(String),
    /// Ctrl-C; `discarded` is whether it threw away text being typed.
    Interrupt { discarded: bool },
    /// Ctrl-D on an empty line.
    Leave,
    /// Enter on a line that went past the length limit: it is not run. (What was typed
    /// past the limit was dropped as it came, with a bell.)
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After `ESC [` or `ESC O`, with the digits read so far.
    Sequence(u32),
}

pub struct LineEditor {
    prompt: String,
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Which history entry is shown while browsing, and the line typed before browsing.
    browsing: Option<(usize, Vec<char>)>,
    escape: Escape,
    utf8: Vec<u8>,
    after_cr: bool,
    max_len: usize,
    /// The line went past `max_len`: it will be refused at Enter.
    overlong: bool,
    /// The terminal's width in columns (0: unknown, taken as unlimited).
    cols: usize,
    /// The row of the cursor below the prompt's row, as last drawn.
    rows_above: usize,
}

impl LineEditor {
    pub fn new(prompt: &str, max_len: usize) -> Self {
        LineEditor {
            prompt: prompt.to_string(),
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: None,
            escape: Escape::None,
            utf8: Vec::new(),
            after_cr: false,
            max_len,
            overlong: false,
            cols: 0,
            rows_above: 0,
        }
    }

    /// The terminal's width, from the pty request and each window change.
    pub fn set_width(&mut self, cols: u32) {
        self.cols = cols as usize;
    }

    /// The prompt and the line being typed, cursor in place, over what was drawn
    /// before (which may span several rows of a narrow terminal).
    pub fn redraw(&mut self) -> String {
        let line: String = self.line.iter().collect();
        let mut s = self.up_to_prompt_row();
        s.push_str(&format!("\r{}{line}\x1b[J", self.prompt));
        let width = self.prompt.chars().count();
        if self.cols == 0 {
            let back = self.line.len() - self.cursor;
            if back > 0 {
                s.push_str(&format!("\x1b[{back}D"));
            }
            return s;
        }
        let end = width + self.line.len();
        if end > 0 && end.is_multiple_of(self.cols) {
            // The cursor waits at the right margin; a space moves it to the next row.
            s.push_str(" \r");
        }
        let at = width + self.cursor;
        let up = end / self.cols - at / self.cols;
        if up > 0 {
            s.push_str(&format!("\x1b[{up}A"));
        }
        s.push('\r');
        if !at.is_multiple_of(self.cols) {
            s.push_str(&format!("\x1b[{}C", at % self.cols));
        }
        self.rows_above = at / self.cols;
        s
    }

    /// Moves the cursor up to the row the prompt is on.
    fn up_to_prompt_row(&mut self) -> String {
        let up = std::mem::take(&mut self.rows_above);
        if up > 0 {
            format!("\x1b[{up}A")
        } else {
            String::new()
        }
    }

    /// Leaves the line as typed and moves below it (Enter, Ctrl-C).
    fn finish_line(&mut self, mark: &str) -> String {
        self.cursor = self.line.len();
        let mut s = self.redraw();
        self.rows_above = 0;
        s.push_str(mark);
        s.push_str("\r\n");
        s
    }

    /// Shows `text` above the line being typed, then the line again.
    pub fn print_above(&mut self, text: &str) -> String {
        let mut s = self.up_to_prompt_row();
        s.push_str(&format!("\r\x1b[J{}\r\n", crlf(text)));
        s.push_str(&self.redraw());
        s
    }

    /// Handles what the client sent. `complete` gives the next words for a partial line
    /// (the lexicon's completion). Returns what to write to the screen and what to do.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        complete: &dyn Fn(&str) -> Vec<String>,
    ) -> (String, Vec<Action>) {
        let mut screen = String::new();
        let mut actions = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match self.escape {
                Escape::Start => {
                    self.escape = match b {
                        b'[' | b'O' => Escape::Sequence(0),
                        _ => Escape::None,
                    };
                    continue;
                }
                Escape::Sequence(n) => {
                    if b.is_ascii_digit() {
                        let n = n.saturating_mul(10).saturating_add(u32::from(b - b'0'));
                        self.escape = Escape::Sequence(n);
                    } else if b == b';' {
                        self.escape = Escape::Sequence(0);
                    } else {
                        self.escape = Escape::None;
                        self.sequence(b, n, &mut screen);
                    }
                    continue;
                }
                Escape::None => {}
            }
            match b {
                0x1b => self.escape = Escape::Start,
                b'\r' | b'\n' => {
                    if b == b'\n' && after_cr {
                        continue;
                    }
                    self.after_cr = b == b'\r';
                    screen.push_str(&self.finish_line(""));
                    let line: String = self.line.drain(..).collect();
                    self.cursor = 0;
                    self.browsing = None;
                    if std::mem::take(&mut self.overlong) {
                        actions.push(Action::TooLong);
                        continue;
                    }
                    if !line.trim().is_empty() && self.history.last() != Some(&line) {
                        if self.history.len() >= HISTORY {
                            self.history.remove(0);
                        }
                        self.history.push(line.clone());
                    }
                    actions.push(Action::Submit(line));
                }
                0x03 => {
                    let discarded = !self.line.is_empty();
                    screen.push_str(&self.finish_line("^C"));
                    self.line.clear();
                    self.cursor = 0;
                    self.browsing = None;
                    self.overlong = false;
                    actions.push(Action::Interrupt { discarded });
                }
                0x04 if self.line.is_empty() => actions.push(Action::Leave),
                0x04 => self.delete_at_cursor(&mut screen),
                0x7f | 0x08 => {
                    if self.cursor > 0 {
                        self.cursor -= 1;
                        self.line.remove(self.cursor);
                        screen.push_str(&self.redraw());
                    }
                }
                0x01 => self.move_to(0, &mut screen),
                0x05 => self.move_to(self.line.len(), &mut screen),
                0x02 => self.move_to(self.cursor.saturating_sub(1), &mut screen),
                0x06 => self.move_to((self.cursor + 1).min(self.line.len()), &mut screen),
                0x0b => {
                    self.line.truncate(self.cursor);
                    screen.push_str(&self.redraw());
                }
                0x15 => {
                    self.line.drain(..self.cursor);
                    self.cursor = 0;
                    screen.push_str(&self.redraw());
                }
                0x0c => {
                    self.rows_above = 0;
                    screen.push_str(&format!("\x1b[H\x1b[2J{}", self.redraw()));
                }
                b'\t' => self.complete(complete, &mut screen),
                b if b < 0x20 => {}
                b => {
                    self.utf8.push(b);
                    match std::str::from_utf8(&self.utf8) {
                        Ok(s) => {
                            let chars: Vec<char> = s.chars().collect();
                            self.utf8.clear();
                            for c in chars {
                                self.insert(c, &mut screen);
                            }
                        }
                        Err(e) if e.error_len().is_some() => self.utf8.clear(),
                        Err(_) => {}
                    }
                }
            }
        }
        (screen, actions)
    }

    fn sequence(&mut self, last: u8, n: u32, screen: &mut String) {
        match (last, n) {
            (b'A', _) => self.history_step(true, screen),
            (b'B', _) => self.history_step(false, screen),
            (b'C', _) => self.move_to((self.cursor + 1).min(self.line.len()), screen),
            (b'D', _) => self.move_to(self.cursor.saturating_sub(1), screen),
            (b'H', _) | (b'~', 1 | 7) => self.move_to(0, screen),
            (b'F', _) | (b'~', 4 | 8) => self.move_to(self.line.len(), screen),
            (b'~', 3) => self.delete_at_cursor(screen),
            _ => {}
        }
    }

    /// The line being typed will be refused at Enter: input was lost before it (the
    /// session's input queue overflowed), so it is not the line the person typed.
    pub fn refuse_line(&mut self) {
        self.overlong = true;
    }

    fn insert(&mut self, c: char, screen: &mut String) {
        if self.overlong {
            return;
        }
        if self.line.len() >= self.max_len {
            // A bell, once; the rest of the line is dropped as it comes.
            self.overlong = true;
            screen.push('\x07');
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        let at = self.prompt.chars().count() + self.cursor;
        let wraps = self.cols > 0 && at.is_multiple_of(self.cols);
        if self.cursor == self.line.len() && !wraps {
            screen.push(c);
            if let Some(row) = at.checked_div(self.cols) {
                self.rows_above = row;
            }
        } else {
            screen.push_str(&self.redraw());
        }
    }

    fn insert_str(&mut self, s: &str, screen: &mut String) {
        for c in s.chars() {
            self.insert(c, screen);
        }
    }

    fn move_to(&mut self, at: usize, screen: &mut String) {
        if at != self.cursor {
            self.cursor = at;
            screen.push_str(&self.redraw());
        }
    }

    fn delete_at_cursor(&mut self, screen: &mut String) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            screen.push_str(&self.redraw());
        }
    }

    /// Up (`older`) or Down through this session's history.
    fn history_step(&mut self, older: bool, screen: &mut String) {
        if self.history.is_empty() {
            return;
        }
        let next = match (&self.browsing, older) {
            (None, true) => Some(self.history.len() - 1),
            (None, false) => return,
            (Some((0, _)), true) => Some(0),
            (Some((i, _)), true) => Some(i - 1),
            (Some((i, _)), false) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), false) => None,
        };
        match next {
            Some(i) => {
                if self.browsing.is_none() {
                    self.browsing = Some((i, self.line.clone()));
                }
                if let Some((at, _)) = &mut self.browsing {
                    *at = i;
                }
                self.line = self.history[i].chars().collect();
            }
            None => {
                let (_, typed) = self.browsing.take().unwrap_or_default();
                self.line = typed;
            }
        }
        self.cursor = self.line.len();
        screen.push_str(&self.redraw());
    }

    /// Tab: completes the word before the cursor, or lists the choices.
    fn complete(&mut self, complete: &dyn Fn(&str) -> Vec<String>, screen: &mut String) {
        let before: String = self.line[..self.cursor].iter().collect();
        let words = complete(&before);
        let partial = if before.ends_with(char::is_whitespace) || before.is_empty() {
            ""
        } else {
            before.split_whitespace().last().unwrap_or("")
        };
        let lower = partial.to_lowercase();
        let candidates: Vec<&String> = words
            .iter()
            .filter(|w| w.to_lowercase().starts_with(&lower))
            .collect();
        match candidates.as_slice() {
            [] => {}
            [one] => {
                let rest: String = one.chars().skip(partial.chars().count()).collect();
                self.insert_str(&format!("{rest} "), screen);
            }
            many => {
                let common = common_prefix(many);
                if common.chars().count() > partial.chars().count() {
                    let rest: String = common.chars().skip(partial.chars().count()).collect();
                    self.insert_str(&rest, screen);
                } else {
                    let list = many
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("  ");
                    screen.push_str(&self.print_above(&list));
                }
            }
        }
    }
}

fn common_prefix(words: &[&String]) -> String {
    let first = words[0];
    let mut len = first.chars().count();
    for w in &words[1..] {
        len = len.min(
            first
                .chars()
                .zip(w.chars())
                .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                .count(),
        );
    }
    first.chars().take(len).collect()
}

/// Text for a raw-mode terminal: every line break as CR LF.
pub fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests;

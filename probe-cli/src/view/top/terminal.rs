//! The terminal: raw mode and the alternate screen while `top` runs, put back on every way out
//! (return, error, Ctrl-C as a key, SIGINT/SIGTERM through the caller's flag, panic), and keys
//! read as [`Input`]s.

use std::io;
use std::sync::Once;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::widgets::TableState;
use ratatui::Terminal;

use super::{draw, Input, TopState};

/// Leave the alternate screen and raw mode (idempotent, errors ignored: nothing else to do).
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

/// A panic hook that puts the terminal back before the panic message is printed (once per
/// process; chains to the previous hook).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
}

/// The terminal in raw mode on the alternate screen; put back when dropped.
pub struct Tui {
    term: Terminal<CrosstermBackend<io::Stdout>>,
    table: TableState,
    visible_rows: usize,
}

impl Tui {
    /// Enter raw mode and the alternate screen.
    pub fn enter() -> io::Result<Tui> {
        install_panic_hook();
        enable_raw_mode()?;
        let entered = execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(term) => Ok(Tui {
                term,
                table: TableState::default(),
                visible_rows: 10,
            }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// Draw the state (the frame is sized to the terminal: a resize only needs a redraw).
    pub fn draw(&mut self, s: &TopState) -> io::Result<()> {
        let table = &mut self.table;
        let mut rows = 0;
        self.term.draw(|f| rows = draw::draw(f, s, table))?;
        self.visible_rows = rows;
        Ok(())
    }

    /// Clear the screen: the next draw repaints every cell.
    pub fn clear(&mut self) -> io::Result<()> {
        self.term.clear()
    }

    /// Table rows visible in the last frame.
    pub fn visible_rows(&self) -> usize {
        self.visible_rows
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
    }
}

/// What the terminal said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermEvent {
    /// A key.
    Key(Input),
    /// The window changed size.
    Resize,
}

/// A key event as an [`Input`] (`None` for keys `top` does not use, and key releases).
pub fn map_key(k: KeyEvent) -> Option<Input> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        KeyCode::Char('c' | 'd') if ctrl => Input::Interrupt,
        KeyCode::Char('l') if ctrl => Input::Repaint,
        KeyCode::Char(_) if ctrl => return None,
        KeyCode::Char(c) => Input::Char(c),
        KeyCode::Up => Input::Up,
        KeyCode::Down => Input::Down,
        KeyCode::PageUp => Input::PageUp,
        KeyCode::PageDown => Input::PageDown,
        KeyCode::Home => Input::Home,
        KeyCode::End => Input::End,
        KeyCode::Enter => Input::Enter,
        KeyCode::Right => Input::Right,
        KeyCode::Left => Input::Left,
        KeyCode::Backspace => Input::Backspace,
        KeyCode::Esc => Input::Esc,
        _ => return None,
    })
}

/// Wait up to `timeout` for the terminal (stdin) to be readable. Errors when it hung up:
/// crossterm's own poll loops on a hung-up terminal (reads of 0 bytes) without returning, so it
/// is only called once the descriptor is known to be alive.
#[allow(
    unsafe_code,
    reason = "poll(2) on stdin: crossterm's poll never returns on a hung-up terminal"
)]
fn wait_tty(timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: poll(2) on one valid, initialised pollfd (count 1); it only writes `revents`.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the terminal hung up",
        ));
    }
    Ok(r > 0)
}

fn read_one() -> io::Result<Option<TermEvent>> {
    Ok(match event::read()? {
        Event::Key(k) => map_key(k).map(TermEvent::Key),
        Event::Resize(..) => Some(TermEvent::Resize),
        _ => None,
    })
}

/// Wait up to `timeout` for a key or a resize (`None`: nothing, or nothing `top` uses).
pub fn next_event(timeout: Duration) -> io::Result<Option<TermEvent>> {
    use std::io::IsTerminal as _;
    if !io::stdin().is_terminal() {
        // crossterm reads /dev/tty then; no hang-up check on that descriptor.
        return if event::poll(timeout)? {
            read_one()
        } else {
            Ok(None)
        };
    }
    // Events crossterm has already read and queued come first.
    wait_tty(Duration::ZERO)?;
    if event::poll(Duration::ZERO)? {
        return read_one();
    }
    if wait_tty(timeout)? && event::poll(Duration::ZERO)? {
        return read_one();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = |c, m| map_key(KeyEvent::new(c, m));
        assert_eq!(
            k(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Input::Interrupt)
        );
        assert_eq!(k(KeyCode::Char('x'), KeyModifiers::CONTROL), None);
        assert_eq!(
            k(KeyCode::Char('S'), KeyModifiers::SHIFT),
            Some(Input::Char('S'))
        );
        assert_eq!(k(KeyCode::Enter, KeyModifiers::NONE), Some(Input::Enter));
        assert_eq!(
            k(KeyCode::Backspace, KeyModifiers::NONE),
            Some(Input::Backspace)
        );
        assert_eq!(k(KeyCode::F(1), KeyModifiers::NONE), None);
        let mut r = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        r.kind = KeyEventKind::Release;
        assert_eq!(map_key(r), None);
    }
}

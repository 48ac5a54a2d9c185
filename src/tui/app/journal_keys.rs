//! The journal screen's keys: days (never past today), the state filter, the
//! order list, and an order's timeline, which scrolls to its last event.

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, Command, FILTERS, Screen};
use crate::journal::OrderState;
use crate::tui::journal_view::timeline_rows;

/// Rows a PgUp/PgDn moves in the order list.
const LIST_PAGE: usize = 20;

impl App {
    pub(super) fn journal_key(&mut self, key: KeyEvent, ctrl_c: bool, commands: &mut Vec<Command>) {
        let today = self.date;
        let page = timeline_rows(self.size.1);
        let Screen::Journal(journal) = &mut self.screen else {
            return;
        };
        let rows = journal.visible().len();
        if ctrl_c {
            self.quit = true;
            commands.push(Command::Quit);
            return;
        }
        if let Some(detail) = &journal.detail {
            let events = detail.as_ref().map_or(0, |(_, events)| events.len());
            self.detail_key(key, events, page);
            return;
        }
        match key.code {
            KeyCode::Esc | KeyCode::F(12) | KeyCode::Char('q') if self.journal_only => {
                self.quit = true;
                commands.push(Command::Quit);
            }
            KeyCode::Esc | KeyCode::F(12) | KeyCode::Char('q') => self.screen = Screen::Till,
            KeyCode::Left | KeyCode::Char('h') => {
                journal.day = journal.day.previous_day().unwrap_or(journal.day);
                journal.report = None;
                commands.push(Command::LoadDay(journal.day));
            }
            KeyCode::Right | KeyCode::Char('l') if journal.day < today => {
                journal.day = journal.day.next_day().unwrap_or(journal.day);
                journal.report = None;
                commands.push(Command::LoadDay(journal.day));
            }
            KeyCode::Char('t') => {
                journal.day = today;
                journal.report = None;
                commands.push(Command::LoadDay(today));
            }
            KeyCode::Char('f') => {
                let at = FILTERS
                    .iter()
                    .position(|f| *f == journal.filter)
                    .unwrap_or(0);
                journal.filter = FILTERS[(at + 1) % FILTERS.len()];
                journal.selected = 0;
            }
            KeyCode::Char('a') => {
                journal.filter = match journal.filter {
                    Some(OrderState::NeedsAttention) => None,
                    _ => Some(OrderState::NeedsAttention),
                };
                journal.selected = 0;
            }
            KeyCode::Down | KeyCode::Char('j') if rows > 0 => {
                journal.selected = (journal.selected + 1).min(rows - 1)
            }
            KeyCode::Up | KeyCode::Char('k') => {
                journal.selected = journal.selected.saturating_sub(1)
            }
            KeyCode::PageDown if rows > 0 => {
                journal.selected = (journal.selected + LIST_PAGE).min(rows - 1)
            }
            KeyCode::PageUp => journal.selected = journal.selected.saturating_sub(LIST_PAGE),
            KeyCode::Home => journal.selected = 0,
            KeyCode::End if rows > 0 => journal.selected = rows - 1,
            KeyCode::Enter => {
                if let Some(order) = journal.visible().get(journal.selected) {
                    commands.push(Command::LoadOrder((*order).clone()));
                }
            }
            _ => {}
        }
    }

    /// An order's timeline: scrolls by row or page to its last event.
    fn detail_key(&mut self, key: KeyEvent, events: usize, page: usize) {
        let Screen::Journal(journal) = &mut self.screen else {
            return;
        };
        let last = events.saturating_sub(page);
        let scroll = &mut journal.scroll;
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace | KeyCode::Char('q') => {
                journal.detail = None;
            }
            KeyCode::Down | KeyCode::Char('j') => *scroll = (*scroll + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => *scroll = (*scroll + page).min(last),
            KeyCode::PageUp => *scroll = scroll.saturating_sub(page),
            KeyCode::Home => *scroll = 0,
            KeyCode::End => *scroll = last,
            _ => {}
        }
    }
}

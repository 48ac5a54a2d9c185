//! The journal screen's keys: days (never past today), the state filter, the
//! order list, an order's timeline, which scrolls to its last event, and the
//! refund of a paid order (`r`, in the list or the timeline).

use crossterm::event::{KeyCode, KeyEvent};

use super::{
    App, Command, FILTERS, JournalScreen, RefundFailed, RefundForm, RefundStep, Screen, Tone,
};
use crate::journal::{OrderRow, OrderState, RefundRefusal, check_refund, day_bounds, refundable};
use crate::payment::refunding::RefundResult;
use crate::tui::amount::{AmountField, Refused};
use crate::tui::journal_view::{state_name, timeline_rows};

/// Rows a PgUp/PgDn moves in the order list.
const LIST_PAGE: usize = 20;

impl App {
    pub(super) fn journal_key(&mut self, key: KeyEvent, ctrl_c: bool, commands: &mut Vec<Command>) {
        let today = self.date;
        let page = timeline_rows(self.size.1);
        let Screen::Journal(journal) = &mut self.screen else {
            return;
        };
        if ctrl_c {
            self.quit = true;
            commands.push(Command::Quit);
            return;
        }
        if journal.refund.is_some() {
            self.refund_key(key, commands);
            return;
        }
        if let Some(detail) = &journal.detail {
            if key.code == KeyCode::Char('r') {
                if let Ok((order, _)) = detail {
                    let order = order.clone();
                    self.open_refund(order);
                }
                return;
            }
            let events = detail.as_ref().map_or(0, |(_, events)| events.len());
            self.detail_key(key, events, page);
            return;
        }
        let rows = journal.visible().len();
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
            KeyCode::Tab if self.store_view => {
                journal.till = next_till(journal);
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
            KeyCode::Char('r') => {
                if let Some(order) = journal.visible().get(journal.selected) {
                    let order = (*order).clone();
                    self.open_refund(order);
                }
            }
            _ => {}
        }
    }

    /// `r` on an order: the refund form if it can be refunded (the checks of
    /// `scanpay refund`, made again by the journal when the refund is
    /// opened), else why not.
    fn open_refund(&mut self, order: OrderRow) {
        if self.journal_only {
            let text = self.words("till.refund_needs_till", &[("order", &order.out_trade_no)]);
            self.say(Tone::Warning, text);
            return;
        }
        let Screen::Journal(journal) = &self.screen else {
            return;
        };
        let totals = match &journal.report {
            Some(Ok(report)) => report.refunds.of(order.id),
            _ => return,
        };
        // The app reads no clock: the start of the store's today is "now"
        // here, and the journal checks the year again with the real time.
        let (today, _) = day_bounds(self.date, self.info.store_offset);
        match refundable(&order, &totals, today) {
            Ok(_) => {
                if let Screen::Journal(journal) = &mut self.screen {
                    journal.refund = Some(RefundForm {
                        order,
                        totals,
                        amount: AmountField::default(),
                        step: RefundStep::Amount,
                        error: None,
                    });
                }
            }
            Err(refusal) => {
                let text = self.refusal_words(&refusal);
                self.say(Tone::Warning, text);
            }
        }
    }

    /// Keys while the refund form is open.
    fn refund_key(&mut self, key: KeyEvent, commands: &mut Vec<Command>) {
        let (today, _) = day_bounds(self.date, self.info.store_offset);
        let Screen::Journal(journal) = &mut self.screen else {
            return;
        };
        let Some(form) = &mut journal.refund else {
            return;
        };
        match (&form.step, key.code) {
            (RefundStep::Running(_), _) => {} // the answer closes nothing early
            (RefundStep::Done(_), KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) => {
                journal.refund = None;
            }
            (RefundStep::Done(_), _) => {}
            (_, KeyCode::Esc) => journal.refund = None,
            (RefundStep::Confirm(amount), KeyCode::Enter | KeyCode::Char('y')) => {
                let amount = *amount;
                commands.push(Command::Refund {
                    order: form.order.clone(),
                    amount,
                });
                form.step = RefundStep::Running(amount);
            }
            (RefundStep::Confirm(_), KeyCode::Char('n') | KeyCode::Backspace) => {
                form.step = RefundStep::Amount;
            }
            (RefundStep::Confirm(_), _) => {}
            (RefundStep::Amount, KeyCode::Enter) => {
                let amount = if form.amount.is_empty() {
                    Ok(form.remaining())
                } else {
                    form.amount.value().map_err(|_| None)
                };
                let checked = amount.and_then(|amount| {
                    check_refund(&form.order, &form.totals, amount, today)
                        .map(|()| amount)
                        .map_err(Some)
                });
                match checked {
                    Ok(amount) => {
                        form.error = None;
                        form.step = RefundStep::Confirm(amount);
                    }
                    Err(refusal) => {
                        let remaining = form.remaining();
                        let text = match refusal {
                            Some(refusal) => self.refusal_words(&refusal),
                            None => self.words("till.refund_amount", &[("remaining", &remaining)]),
                        };
                        if let Screen::Journal(journal) = &mut self.screen
                            && let Some(form) = &mut journal.refund
                        {
                            form.error = Some(text);
                        }
                    }
                }
            }
            (RefundStep::Amount, KeyCode::Backspace | KeyCode::Delete) => {
                form.amount.backspace();
                form.error = None;
            }
            (RefundStep::Amount, KeyCode::Char(c)) if c.is_ascii_digit() || c == '.' => {
                let remaining = form.remaining();
                match form.amount.type_char(c, remaining) {
                    Ok(()) => form.error = None,
                    Err(Refused::OverMaximum(_)) => {
                        let text = self.words("till.refund_amount", &[("remaining", &remaining)]);
                        if let Screen::Journal(journal) = &mut self.screen
                            && let Some(form) = &mut journal.refund
                        {
                            form.error = Some(text);
                        }
                    }
                    Err(_) => {}
                }
            }
            (RefundStep::Amount, _) => {}
        }
    }

    /// A refund asked for here ended: its outcome in the form, and the day
    /// (and the order's timeline) read again.
    pub(super) fn refund_done(
        &mut self,
        result: Result<RefundResult, RefundFailed>,
        commands: &mut Vec<Command>,
    ) {
        commands.push(Command::RefreshToday);
        let Screen::Journal(journal) = &mut self.screen else {
            return;
        };
        commands.push(Command::LoadDay(journal.day));
        if let Some(Ok((order, _))) = &journal.detail {
            commands.push(Command::LoadOrder(order.clone()));
        }
        match &mut journal.refund {
            Some(form) => form.step = RefundStep::Done(result),
            None => {
                let text = match &result {
                    Ok(result) => result.message.clone(),
                    Err(failed) => self.refund_failed_words(failed),
                };
                self.say(Tone::Info, text);
            }
        }
        self.ring(commands);
    }

    /// Why a refund was not made, in the screen's language.
    pub fn refund_failed_words(&self, failed: &RefundFailed) -> String {
        match failed {
            RefundFailed::Refused(refusal) => self.refusal_words(refusal),
            RefundFailed::NotSent => self.words("till.refund_not_sent", &[]),
            RefundFailed::Interrupted => self.words("till.refund_interrupted", &[]),
        }
    }

    /// A refusal of the refund checks, in the screen's language.
    pub fn refusal_words(&self, refusal: &RefundRefusal) -> String {
        #[allow(unreachable_patterns)] // the journal may learn new refusals
        match refusal {
            RefundRefusal::NotPaid(no, state) => self.words(
                "till.refund_not_paid",
                &[("order", no), ("state", &state_name(self, *state))],
            ),
            RefundRefusal::TooOld(no) => self.words("till.refund_too_old", &[("order", no)]),
            RefundRefusal::TooMuch {
                no,
                total,
                used,
                remaining,
            } => self.words(
                "till.refund_too_much",
                &[
                    ("order", no),
                    ("total", total),
                    ("used", used),
                    ("remaining", remaining),
                ],
            ),
            RefundRefusal::TooMany(no) => self.words(
                "till.refund_too_many",
                &[
                    ("order", no),
                    ("max", &crate::journal::MAX_REFUNDS_PER_ORDER),
                ],
            ),
            other => other.to_string(),
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

/// The store screen's till filter after `journal.till`: every till of the
/// day's lines in turn (an id shared by two installations once), then all.
fn next_till(journal: &JournalScreen) -> Option<String> {
    let mut ids: Vec<&str> = journal
        .tills
        .iter()
        .flat_map(|day| day.tills.iter().map(|t| t.till_id.as_str()))
        .collect();
    ids.dedup();
    let next = match &journal.till {
        None => 0,
        Some(current) => ids
            .iter()
            .position(|id| id == current)
            .map_or(0, |at| at + 1),
    };
    ids.get(next).map(|id| id.to_string())
}

//! The till screen's keys: the amount, presets, cancel, and the ways to the
//! journal. The journal is on F12 and `j` (and `a` for the orders needing
//! attention), so F1–F9 are all free for presets.

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, Command, Phase, Tone};
use crate::journal::OrderState;
use crate::tui::amount::Refused;

impl App {
    pub(super) fn till_key(&mut self, key: KeyEvent, ctrl_c: bool, commands: &mut Vec<Command>) {
        let paying = matches!(self.phase, Phase::Paying(_));
        match key.code {
            _ if ctrl_c || key.code == KeyCode::Char('q') => {
                if paying {
                    let text = self.t(
                        "正在支付中，不能退出：请等待结果或按 Esc 取消",
                        "A payment is in progress: wait for it or press Esc to cancel, then quit",
                    );
                    self.say(Tone::Warning, text);
                } else {
                    self.quit = true;
                    commands.push(Command::Quit);
                }
            }
            KeyCode::Esc => match &mut self.phase {
                Phase::Paying(paying) if !paying.cancel_requested => {
                    paying.cancel_requested = true;
                    commands.push(Command::Cancel);
                    let text = self.t(
                        "正在取消：将按规则撤销订单（支付发出15秒后）",
                        "Cancelling: the order will be reversed as the rules allow (15 s after sending)",
                    );
                    self.say(Tone::Info, text);
                }
                Phase::Paying(_) => {}
                Phase::Done(_) => self.phase = Phase::Entering,
                Phase::Entering => {
                    self.clear_sale();
                    self.notice = None;
                }
            },
            KeyCode::F(12) | KeyCode::Char('j') if !paying => {
                let today = self.date;
                commands.extend(self.open_journal(today));
            }
            KeyCode::Char('a') if !paying => {
                let day = self.attention.1.unwrap_or(self.date);
                commands.extend(self.open_journal(day));
                if let super::Screen::Journal(journal) = &mut self.screen {
                    journal.filter = Some(OrderState::NeedsAttention);
                }
            }
            KeyCode::F(n) if (1..=9).contains(&n) && !paying => {
                if let Some((name, amount)) = self.info.presets.get(n as usize - 1).cloned() {
                    self.phase = Phase::Entering;
                    self.amount.set(amount);
                    self.body = name;
                }
            }
            KeyCode::Char(c @ ('0'..='9' | '.')) if !paying => {
                // Typing after a result starts the next sale's amount.
                if matches!(self.phase, Phase::Done(_)) {
                    self.phase = Phase::Entering;
                    self.clear_sale();
                }
                if let Err(refused) = self.amount.type_char(c, self.info.max_amount) {
                    let text = self.refused_text(refused);
                    self.say(Tone::Warning, text);
                }
            }
            KeyCode::Backspace if !paying => {
                // A kept amount (nothing was charged) can be corrected.
                self.phase = Phase::Entering;
                self.amount.backspace();
            }
            KeyCode::Delete if !paying => {
                self.phase = Phase::Entering;
                self.amount.clear();
            }
            KeyCode::Enter if !paying && !self.amount.is_empty() => {
                let text = self.t(
                    "请扫描顾客的微信付款码",
                    "Scan the customer's WeChat payment code",
                );
                self.say(Tone::Info, text);
            }
            _ => {}
        }
    }

    fn refused_text(&self, refused: Refused) -> String {
        match refused {
            Refused::SecondPoint => self
                .t("金额只能有一个小数点", "An amount has one decimal point")
                .into(),
            Refused::ThirdDecimal => self
                .t("金额最多两位小数", "Amounts have at most two decimals")
                .into(),
            Refused::TooLong => self.t("金额太长", "That amount is too long").into(),
            Refused::OverMaximum(max) => self.words("till.over_maximum", &[("max", &max)]),
        }
    }
}

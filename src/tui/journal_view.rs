//! The manager's journal: a day's totals, takings per hour, every order, and
//! one order's event timeline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, BorderType, Cell, Clear, Paragraph, Row, Table, Wrap,
};

use super::app::{App, JournalScreen, RefundForm, RefundStep, Tone};
use crate::domain::{Fen, signed_yuan};
use crate::journal::{DayReport, EventKind, EventRow, OrderRow, OrderState, RefundTotals};
use crate::payment::Event;
use crate::payment::event::{Answer, RefundReply};
use crate::payment::refund::{RefundAnswer, RefundFinal, RefundQueryAnswer, RefundStatus};
use crate::store::{StoreDay, TillDay};
use crate::wechat::api::{MicropayOutcome, QueryOutcome, ReverseOutcome, Unclear};

/// Rows above and below the body (status lines, help line).
const CHROME: u16 = 3;
/// The order facts above the timeline.
const FACTS: u16 = 6;

/// How many timeline rows a terminal `height` shows (borders and header off).
pub fn timeline_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(CHROME + FACTS + 3).max(1))
}

pub fn render(app: &App, journal: &JournalScreen, frame: &mut Frame) {
    let [header, body, help] = Layout::vertical([
        Constraint::Length(CHROME - 1),
        Constraint::Min(10),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    super::till::status_lines(app, frame, header);
    let keys = if let Some(form) = &journal.refund {
        match form.step {
            RefundStep::Amount => app.t(
                " 数字 输入退款金额 · Backspace 删除 · Enter 下一步 · Esc 取消",
                " digits the amount · Backspace delete · Enter next · Esc cancel",
            ),
            RefundStep::Confirm(_) => app.t(
                " Enter 或 y 确认退款 · n 修改金额 · Esc 取消",
                " Enter or y refunds · n change the amount · Esc cancel",
            ),
            RefundStep::Running(_) => app.t(" 正在退款，请稍候…", " Refunding, please wait…"),
            RefundStep::Done(_) => app.t(" Enter 或 Esc 关闭", " Enter or Esc closes"),
        }
    } else if journal.detail.is_some() && app.journal_only {
        app.t(
            " ↑↓ PgUp PgDn Home End 滚动时间线 · Esc 返回列表",
            " ↑↓ PgUp PgDn Home End scroll the timeline · Esc back to the list",
        )
    } else if journal.detail.is_some() {
        app.t(
            " ↑↓ PgUp PgDn Home End 滚动时间线 · r 退款 · Esc 返回列表",
            " ↑↓ PgUp PgDn Home End scroll the timeline · r refund · Esc back to the list",
        )
    } else if app.store_view {
        app.t(
            " ←→ 前后一天 · t 今天 · f 筛选 · Tab 收银台 · a 待处理 · ↑↓ 选择 · Enter 详情 · q 退出",
            " ←→ day · t today · f filter · Tab till · a attention · ↑↓ select · Enter detail · q quit",
        )
    } else if app.journal_only {
        app.t(
            " ←→ 前后一天 · t 今天 · f 筛选 · a 待处理 · ↑↓ 选择 · Enter 详情 · q 退出",
            " ←→ day · t today · f filter · a attention · ↑↓ select · Enter order detail · q quit",
        )
    } else {
        app.t(
            " ←→ 前后一天 · t 今天 · f 筛选 · a 待处理 · ↑↓ 选择 · Enter 详情 · r 退款 · Esc 返回收银",
            " ←→ day · t today · f filter · a attention · ↑↓ select · Enter detail · r refund · Esc till",
        )
    };
    // A notice (why an order cannot be refunded, say) takes the help line
    // until it times out.
    match &app.notice {
        Some(notice) => {
            let style = match notice.tone {
                Tone::Info => Style::new().cyan(),
                Tone::Warning => Style::new().yellow().bold(),
                Tone::Error => Style::new().red().bold(),
            };
            frame.render_widget(
                Paragraph::new(format!(" {}", notice.text)).style(style),
                help,
            );
        }
        None => frame.render_widget(Paragraph::new(keys).dark_gray(), help),
    }
    match (&journal.detail, &journal.report) {
        (Some(Ok((order, events))), _) => detail(app, journal, order, events, frame, body),
        (Some(Err(e)), _) | (None, Some(Err(e))) => {
            let what = if app.store_view {
                app.t("无法读取门店数据库", "Cannot read the store database")
            } else {
                app.t("无法读取账本", "Cannot read the journal")
            };
            let text = format!("{what}: {e}");
            frame.render_widget(Paragraph::new(text).red().wrap(Wrap { trim: true }), body);
        }
        (None, None) => frame.render_widget(
            Paragraph::new(app.t(" 正在读取…", " Loading…")).dark_gray(),
            body,
        ),
        (None, Some(Ok(report))) => day(app, journal, report, frame, body),
    }
    if let Some(form) = &journal.refund {
        refund_form(app, form, frame, body);
    }
}

/// The refund form, over the middle of the list or the timeline.
fn refund_form(app: &App, form: &RefundForm, frame: &mut Frame, area: Rect) {
    let width = area.width.saturating_sub(4).min(76);
    let height = 9.min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let order = &form.order;
    let mut lines = vec![
        Line::from(format!(
            " {} {} · {} ¥{} · {} ¥{}",
            app.t("订单号", "order"),
            order.out_trade_no,
            app.t("已付", "paid"),
            order.total_fee,
            app.t("已退", "refunded"),
            form.totals.refunded
        )),
        Line::from(vec![
            Span::raw(format!(" {} ", app.t("可退金额", "refundable"))),
            Span::raw(format!("¥{}", form.remaining())).bold(),
        ]),
        Line::from(""),
    ];
    match &form.step {
        RefundStep::Amount => {
            let typed = if form.amount.is_empty() {
                Span::raw(format!(
                    "{}{}",
                    form.remaining(),
                    app.t("（默认：全部可退金额）", " (default: all that remains)")
                ))
                .dark_gray()
            } else {
                Span::raw(format!("{}▏", form.amount.text())).bold()
            };
            lines.push(Line::from(vec![
                Span::raw(format!(
                    " {} ¥",
                    app.t("退款金额（元）：", "Refund (yuan):")
                )),
                typed,
            ]));
            match &form.error {
                Some(error) => lines.push(Line::from(format!(" {error}")).yellow().bold()),
                None => lines.push(Line::from("")),
            }
            lines.push(
                Line::from(
                    app.t(" Enter 下一步 · Esc 取消", " Enter next · Esc cancel")
                        .to_string(),
                )
                .dark_gray(),
            );
        }
        RefundStep::Confirm(amount) => {
            lines.push(
                Line::from(format!(
                    " {} ¥{} {} {}？",
                    app.t("确认退款", "Refund"),
                    amount,
                    app.t("给订单", "of order"),
                    order.out_trade_no
                ))
                .bold()
                .yellow(),
            );
            lines.push(Line::from(""));
            lines.push(Line::from(
                app.t(
                    " Enter 或 y 确认退款 · n 修改金额 · Esc 取消",
                    " Enter or y refunds · n change the amount · Esc cancel",
                )
                .to_string(),
            ));
        }
        RefundStep::Running(amount) => {
            lines.push(
                Line::from(format!(" {} ¥{}…", app.t("正在退款", "Refunding"), amount))
                    .bold()
                    .cyan(),
            );
        }
        RefundStep::Done(result) => {
            let (text, style) = match result {
                Ok(result) => {
                    let style = match &result.outcome {
                        RefundFinal::Refunded { .. } => Style::new().green().bold(),
                        RefundFinal::Refused(_) | RefundFinal::Closed => Style::new().red().bold(),
                        _ => Style::new().yellow().bold(),
                    };
                    let text = format!(
                        " {} · ¥{} · {} {}",
                        result.message,
                        result.amount,
                        app.t("退款单号", "refund"),
                        result.out_refund_no
                    );
                    (text, style)
                }
                Err(failed) => (
                    format!(" {}", app.refund_failed_words(failed)),
                    Style::new().red().bold(),
                ),
            };
            lines.push(Line::from(text).style(style));
            lines.push(Line::from(""));
            lines.push(
                Line::from(
                    app.t(" Enter 或 Esc 关闭", " Enter or Esc closes")
                        .to_string(),
                )
                .dark_gray(),
            );
        }
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(format!(" {} ", app.t("退款", "Refund"))),
        ),
        popup,
    );
}

/// Whether `day` was reconciled against WeChat's bill, once that is read.
fn reconciled(app: &App, day: time::Date) -> Option<String> {
    let (read_day, row) = app.reconciled.as_ref()?;
    if *read_day != day {
        return None;
    }
    Some(match row {
        None => app.t("对账：未对账", "not reconciled").to_string(),
        Some(row) if row.discrepancies == 0 => app
            .t("对账：已对账，一致", "reconciled: the books agree")
            .to_string(),
        Some(row) if app.zh() => format!("对账：{} 处不一致", row.discrepancies),
        Some(row) => format!("reconciled: {} discrepancies", row.discrepancies),
    })
}

pub fn state_name(app: &App, state: OrderState) -> &'static str {
    match state {
        OrderState::Open => app.t("进行中", "open"),
        OrderState::Paid => app.t("成功", "paid"),
        OrderState::Failed => app.t("失败", "failed"),
        OrderState::Reversed => app.t("已撤销", "reversed"),
        OrderState::Closed => app.t("已关闭", "closed"),
        OrderState::NeedsAttention => app.t("待处理", "needs attention"),
    }
}

fn state_color(state: OrderState) -> Color {
    match state {
        OrderState::Paid => Color::Green,
        OrderState::Failed => Color::Red,
        OrderState::Reversed | OrderState::Closed => Color::Yellow,
        OrderState::NeedsAttention | OrderState::Open => Color::Magenta,
    }
}

/// Local wall time of a unix-ms instant, to the second.
fn local_time(app: &App, ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(|t| t.to_offset(app.info.store_offset));
    match at {
        Ok(t) => format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
        Err(_) => "??:??:??".into(),
    }
}

fn day(app: &App, journal: &JournalScreen, report: &DayReport, frame: &mut Frame, area: Rect) {
    let s = &report.summary;
    // The day's refunds, when it had any, on a line of their own.
    let refunds = refund_totals(app, s);
    // The store screen's lines per till, once read for this very day.
    let tills = journal
        .tills
        .as_ref()
        .filter(|t| t.date == report.day.to_string());
    let till_rows = tills.map_or(0, |t| till_lines_height(t, area.height));
    let [title, totals, per_till, chart, table] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(if refunds.is_empty() { 1 } else { 2 }),
        Constraint::Length(till_rows),
        Constraint::Length(7),
        Constraint::Min(3),
    ])
    .areas(area);
    let visible = journal.visible();
    let filter = journal
        .filter
        .map_or(app.t("全部", "all"), |s| state_name(app, s));
    let offset = app.info.store_offset;
    let heading = format!(
        " {} {} (UTC{:+03}:{:02}) · {} {} · {} {}",
        if app.store_view {
            app.t("门店", "Store")
        } else {
            app.t("账本", "Journal")
        },
        report.day,
        offset.whole_hours(),
        offset.minutes_past_hour().abs(),
        app.t("筛选", "filter"),
        filter,
        visible.len(),
        app.t("笔订单", "orders")
    );
    let heading = match &journal.till {
        Some(till) => format!("{heading} · {} {till}", app.t("收银台", "till")),
        None => heading,
    };
    let heading = match reconciled(app, report.day) {
        Some(text) => format!("{heading} · {text}"),
        None => heading,
    };
    frame.render_widget(Paragraph::new(heading).bold(), title);
    let totals_line = Line::from(vec![
        Span::styled(
            format!(
                " {} {} ¥{}",
                state_name(app, OrderState::Paid),
                s.paid_count,
                s.paid_total
            ),
            Style::new().green().bold(),
        ),
        Span::raw(format!(
            " · {} {}",
            state_name(app, OrderState::Failed),
            s.failed
        )),
        Span::raw(format!(
            " · {} {}",
            state_name(app, OrderState::Reversed),
            s.reversed
        )),
        Span::raw(format!(
            " · {} {}",
            state_name(app, OrderState::Closed),
            s.closed
        )),
        Span::styled(
            format!(
                " · {} {}",
                state_name(app, OrderState::NeedsAttention),
                s.needs_attention
            ),
            if s.needs_attention > 0 {
                Style::new().magenta().bold()
            } else {
                Style::new()
            },
        ),
        Span::raw(format!(
            " · {} {}",
            state_name(app, OrderState::Open),
            s.open
        )),
    ]);
    let mut lines = vec![totals_line];
    if !refunds.is_empty() {
        lines.push(Line::from(refunds).yellow());
    }
    frame.render_widget(Paragraph::new(lines), totals);
    if let Some(tills) = tills {
        till_lines(app, tills, journal.till.as_deref(), frame, per_till);
    }
    hourly(app, &s.hourly_paid, frame, chart);
    orders(app, journal, &visible, frame, table);
}

/// The most till lines the store screen gives up room for.
const MAX_TILL_LINES: usize = 8;

/// Rows for the per-till table: a header, a line per till (at most
/// [`MAX_TILL_LINES`], and one more saying how many are left out), the total;
/// none on a terminal too short to keep the order list.
fn till_lines_height(tills: &StoreDay, height: u16) -> u16 {
    let shown = tills.tills.len().min(MAX_TILL_LINES);
    let more = usize::from(tills.tills.len() > MAX_TILL_LINES);
    let rows = (shown + more + 2) as u16;
    if height < rows + 16 { 0 } else { rows }
}

/// One line per till of the day (takings, refunds, what is unsettled, how
/// far the store has its events), the one the list is filtered to marked,
/// then the store's total.
fn till_lines(app: &App, tills: &StoreDay, shown: Option<&str>, frame: &mut Frame, area: Rect) {
    let line = |t: &TillDay, name: String| {
        let unsettled = if t.unsettled > 0 {
            Style::new().magenta().bold()
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(name),
            Cell::from(t.orders.to_string()),
            Cell::from(format!("{} ¥{}", t.paid, signed_yuan(t.takings))),
            Cell::from(format!("{} ¥{}", t.refunds, signed_yuan(t.refunded))),
            Cell::from(format!("¥{}", signed_yuan(t.takings - t.refunded))),
            Cell::from(t.unsettled.to_string()).style(unsettled),
            Cell::from(if t.installation_id.is_empty() {
                String::new()
            } else {
                t.shipped_through.to_string()
            }),
        ])
    };
    let mut rows: Vec<Row> = tills
        .tills
        .iter()
        .take(MAX_TILL_LINES)
        .map(|t| {
            let row = line(t, format!("{} ({})", t.till_id, t.installation_id));
            if shown == Some(t.till_id.as_str()) {
                row.reversed()
            } else {
                row
            }
        })
        .collect();
    rows.push(line(&tills.total, app.t("合计", "total").to_string()).bold());
    let left_out = tills.tills.len().saturating_sub(MAX_TILL_LINES);
    let [table, note] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(u16::from(left_out > 0)),
    ])
    .areas(area);
    if left_out > 0 {
        let text = format!(
            "… {left_out} {}",
            app.t(
                "台未列出，合计含全部：scanpay store --tills 列出全部",
                "more tills, in the total: scanpay store --tills lists them all"
            )
        );
        frame.render_widget(Paragraph::new(text).dark_gray(), note);
    }
    let header = Row::new(vec![
        app.t("收银台", "till"),
        app.t("订单", "orders"),
        app.t("收款", "paid"),
        app.t("退款", "refunded"),
        app.t("净收", "net"),
        app.t("待处理", "unsettled"),
        app.t("已入库事件", "in store through event"),
    ])
    .dark_gray();
    let widths = [
        Constraint::Length(22),
        Constraint::Length(7),
        Constraint::Length(16),
        Constraint::Length(14),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Min(8),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), table);
}

/// The day's refunds after its takings, when it had any: issued (confirmed)
/// ones and the takings net of them, then those WeChat has not confirmed.
fn refund_totals(app: &App, s: &crate::journal::DaySummary) -> String {
    let mut text = String::new();
    if s.refunded_count > 0 || s.refund_pending_count > 0 {
        text.push_str(&format!(
            " {} {} ¥{} · {} ¥{}",
            app.t("退款", "refunded"),
            s.refunded_count,
            s.refunded_total,
            app.t("净收", "net"),
            s.net_yuan()
        ));
    }
    if s.refund_pending_count > 0 {
        text.push_str(&format!(
            " · {} {} ¥{}",
            app.t("退款中", "refunding"),
            s.refund_pending_count,
            s.refund_pending_total
        ));
    }
    text
}

fn hourly(app: &App, takings: &[Fen; 24], frame: &mut Frame, area: Rect) {
    let bars: Vec<Bar> = takings
        .iter()
        .enumerate()
        .map(|(hour, fen)| {
            Bar::default()
                .value(fen.0)
                .label(Line::from(format!("{hour:02}")))
                .text_value(String::new())
        })
        .collect();
    let chart = BarChart::default()
        .block(
            Block::new()
                .title(app.t(" 每小时收款 ", " takings per hour "))
                .dark_gray(),
        )
        .data(BarGroup::default().bars(&bars))
        .bar_width(2)
        .bar_gap(1)
        .bar_style(Style::new().green());
    frame.render_widget(chart, area);
}

/// `text` cut to `width` characters from the front: the tail of an order
/// number (its sequence) and of a transaction id is what tells them apart.
fn tail(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_string();
    }
    let keep = width.saturating_sub(1);
    let rest: String = text.chars().skip(count - keep).collect();
    format!("…{rest}")
}

/// `text` cut to `width` characters at the end (codes read from the front).
fn head(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn orders(
    app: &App,
    journal: &JournalScreen,
    visible: &[&OrderRow],
    frame: &mut Frame,
    area: Rect,
) {
    let height = area.height.saturating_sub(3).max(1) as usize;
    // Only the rows on screen are built, so a busy day renders as fast as a quiet one.
    let first = journal.selected.saturating_sub(height - 1);
    let on_screen = || visible.iter().enumerate().skip(first).take(height);
    // Widths: time, amount and state fixed; the order number, code and
    // transaction id share the rest, each cut from the side that tells rows
    // apart, and shown whole when the terminal is wide enough.
    const TIME: usize = 8;
    const AMOUNT: usize = 10;
    let refunds = |order: &OrderRow| match &journal.report {
        Some(Ok(report)) => report.refunds.of(order.id),
        _ => RefundTotals::default(),
    };
    let any_refunded = on_screen().any(|(_, o)| refunds(o).refunded.0 > 0);
    let state_w = [
        OrderState::Open,
        OrderState::Paid,
        OrderState::Failed,
        OrderState::Reversed,
        OrderState::Closed,
        OrderState::NeedsAttention,
    ]
    .iter()
    .map(|s| Line::from(state_name(app, *s)).width())
    .chain(
        any_refunded
            .then(|| Line::from(refunded_name(app, Fen(1), Fen(2)).unwrap_or_default()).width()),
    )
    .max()
    .unwrap_or(8);
    let longest = |f: &dyn Fn(&OrderRow) -> usize, min: usize| {
        on_screen().map(|(_, o)| f(o)).max().unwrap_or(0).max(min)
    };
    let order_full = longest(&|o| o.out_trade_no.as_str().len(), 8);
    let code_full = longest(&|o| o.err_code.as_deref().map_or(0, str::len), 6);
    let txn_full = longest(&|o| o.transaction_id.as_deref().map_or(0, str::len), 12);
    let spare =
        usize::from(area.width.saturating_sub(2 + 5)).saturating_sub(TIME + AMOUNT + state_w);
    let code_w = code_full.min(spare / 5).max(6);
    let shared = spare.saturating_sub(code_w);
    // The order number whole first (it is what a manager looks for), then
    // the transaction id's tail in what is left.
    let (order_w, txn_w) = if shared >= order_full + 16.min(txn_full) {
        (order_full, shared - order_full)
    } else {
        let order_w =
            (shared * order_full / (order_full + txn_full)).clamp(8.min(shared), order_full);
        (order_w, shared - order_w)
    };
    let rows = on_screen().map(|(i, order)| {
        let style = if i == journal.selected {
            Style::new().reversed()
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(local_time(app, order.created_at_ms)),
            Cell::from(tail(order.out_trade_no.as_str(), order_w)),
            Cell::from(format!("{:>10}", order.total_fee.to_string())),
            match refunded_name(app, refunds(order).refunded, order.total_fee) {
                Some(name) => Cell::from(name).style(Style::new().yellow()),
                None => Cell::from(state_name(app, order.state))
                    .style(Style::new().fg(state_color(order.state))),
            },
            Cell::from(head(order.err_code.as_deref().unwrap_or_default(), code_w)),
            Cell::from(tail(
                order.transaction_id.as_deref().unwrap_or_default(),
                txn_w,
            )),
        ])
        .style(style)
    });
    let header = Row::new(vec![
        app.t("时间", "time"),
        app.t("订单号", "order"),
        app.t("      金额", "    amount"),
        app.t("状态", "state"),
        app.t("代码", "code"),
        app.t("微信支付单号", "transaction"),
    ])
    .bold()
    .underlined();
    let widths = [
        Constraint::Length(TIME as u16),
        Constraint::Length(order_w as u16),
        Constraint::Length(AMOUNT as u16),
        Constraint::Length(state_w as u16),
        Constraint::Length(code_w as u16),
        Constraint::Min(txn_w as u16),
    ];
    let title = if visible.is_empty() {
        app.t(" 没有订单 ", " no orders ").to_string()
    } else {
        format!(" {}/{} ", journal.selected + 1, visible.len())
    };
    let table = Table::new(rows, widths).header(header).block(
        Block::bordered()
            .border_type(BorderType::Rounded)
            .title(title),
    );
    frame.render_widget(table, area);
}

/// A paid order's state in the list once refunds were confirmed: whole or in part.
fn refunded_name(app: &App, refunded: Fen, total: Fen) -> Option<&'static str> {
    match refunded {
        Fen(0) => None,
        refunded if refunded >= total => Some(app.t("已退款", "refunded")),
        _ => Some(app.t("部分退款", "part refunded")),
    }
}

/// A paid order's refunds in its detail: confirmed, still unconfirmed, and
/// what remains refundable.
fn refund_facts(app: &App, order: &OrderRow, totals: &RefundTotals) -> String {
    if order.state != OrderState::Paid {
        return String::new();
    }
    let mut text = format!(
        " {} ¥{} · {} ¥{}",
        app.t("已退", "refunded"),
        totals.refunded,
        app.t("可退", "refundable"),
        totals.remaining(order.total_fee)
    );
    let unconfirmed = totals.unconfirmed();
    if unconfirmed.0 > 0 {
        text.push_str(&format!(
            " · {} ¥{unconfirmed}",
            app.t("退款中", "refunding")
        ));
    }
    text
}

fn detail(
    app: &App,
    journal: &JournalScreen,
    order: &OrderRow,
    events: &[EventRow],
    frame: &mut Frame,
    area: Rect,
) {
    let [facts, timeline] =
        Layout::vertical([Constraint::Length(FACTS), Constraint::Min(3)]).areas(area);
    let totals = match &journal.report {
        Some(Ok(report)) => report.refunds.of(order.id),
        _ => RefundTotals::default(),
    };
    let facts_lines = vec![
        Line::from(vec![
            Span::raw(format!(
                " {} {} · ",
                app.t("订单号", "order"),
                order.out_trade_no
            ))
            .bold(),
            Span::styled(
                state_name(app, order.state),
                Style::new().fg(state_color(order.state)).bold(),
            ),
            Span::raw(format!(
                " · ¥{} · {} {}",
                order.total_fee,
                app.t("收银台", "till"),
                order.till_id
            )),
        ]),
        Line::from(format!(
            " {} {} · {} {}",
            app.t("付款码", "code"),
            order.auth_code_masked,
            app.t("描述", "description"),
            order.body
        )),
        Line::from(format!(
            " {} {} · {} {}",
            app.t("微信支付单号", "transaction"),
            order.transaction_id.as_deref().unwrap_or("—"),
            app.t("代码", "code"),
            order.err_code.as_deref().unwrap_or("—")
        )),
        Line::from(vec![
            Span::raw(refund_facts(app, order, &totals)).yellow(),
            Span::raw(match (order.state, order.message.as_deref()) {
                (OrderState::Paid, Some(message)) => format!(" · {message}"),
                (_, message) => format!(" {}", message.unwrap_or("")),
            }),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(facts_lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().border_type(BorderType::Rounded)),
        facts,
    );
    // Scrolled so that the last event can reach the bottom row, never past it.
    let shown = usize::from(timeline.height.saturating_sub(3).max(1));
    let first = journal.scroll.min(events.len().saturating_sub(shown));
    let rows = events.iter().skip(first).take(shown).map(|event| {
        Row::new(vec![
            Cell::from(local_time(app, event.at_ms)),
            Cell::from(
                event
                    .since_t0_ms
                    .map_or(String::new(), |ms| format!("+{:.3} s", ms as f64 / 1000.0)),
            ),
            Cell::from(kind_name(app, event.kind)),
            Cell::from(what_happened(app, event)),
        ])
    });
    let title = if events.len() > shown {
        format!(
            " {} {}–{}/{} ",
            app.t("事件时间线", "timeline"),
            first + 1,
            (first + shown).min(events.len()),
            events.len()
        )
    } else {
        format!(" {} ", app.t("事件时间线", "timeline"))
    };
    let widths = [
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Min(20),
    ];
    let header = Row::new(vec![
        app.t("时间", "time"),
        "t0",
        app.t("类型", "kind"),
        app.t("经过", "what happened"),
    ])
    .bold()
    .underlined();
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(title)),
        timeline,
    );
}

fn kind_name(app: &App, kind: EventKind) -> &'static str {
    if !app.zh() {
        return kind.as_str();
    }
    match kind {
        EventKind::Opened => "开单",
        EventKind::Request => "请求",
        EventKind::Answer => "应答",
        EventKind::Timer => "计时",
        EventKind::Cashier => "收银员",
        EventKind::Finished => "结束",
        EventKind::Note => "备注",
    }
}

/// An event as the manager reads it: the journal's own summary in English,
/// words made from the typed event in Chinese (the summary's technical
/// detail stays in the log, the export and the English view).
fn what_happened(app: &App, row: &EventRow) -> String {
    if !app.zh() {
        return row.summary.clone();
    }
    let unclear = |u: &Unclear| match u {
        Unclear::Unreachable(_) => "连接不上微信支付".to_string(),
        Unclear::Transport(_) => "网络错误，未收到应答".to_string(),
        Unclear::Untrusted(_) => "应答不可信（签名或内容不符）".to_string(),
        Unclear::Gateway { code, .. } => format!("网关返回 {code}"),
    };
    let refusal = |r: &crate::wechat::api::Refusal| match crate::wechat::messages::cashier_message(
        &r.code,
        app.info.language,
    ) {
        Some(text) => format!("{}：{text}", r.code),
        None => r.code.clone(),
    };
    #[allow(unreachable_patterns)] // new events read as their summary
    match &row.event {
        Event::Opened {
            total_fee,
            auth_code_masked,
            ..
        } => format!("开单：¥{}，付款码 {auth_code_masked}", Fen(*total_fee)),
        Event::Request { call, .. } => match call {
            crate::payment::Call::Micropay => "已发送扣款请求".into(),
            crate::payment::Call::Query => "已发送查询请求".into(),
            crate::payment::Call::Reverse { attempt } => {
                format!("已发送撤销请求（第 {attempt} 次）")
            }
        },
        Event::Answer { answer, .. } => match answer {
            Answer::Micropay(outcome) => match outcome {
                MicropayOutcome::Paid(s) => {
                    format!("扣款应答：支付成功，微信支付单号 {}", s.transaction_id)
                }
                MicropayOutcome::Pending => "扣款应答：用户支付中，等待输入密码".into(),
                MicropayOutcome::Unknown(u) => format!("扣款应答：结果未明（{}）", unclear(u)),
                MicropayOutcome::Failed(r) => format!("扣款应答：失败（{}）", refusal(r)),
                MicropayOutcome::NumberTaken(r) => {
                    format!("扣款应答：订单号已被使用（{}）", r.code)
                }
                MicropayOutcome::Unreachable(_) => {
                    "扣款请求未能发出：连接不上微信支付，未扣款".into()
                }
            },
            Answer::Query(outcome) => match outcome {
                QueryOutcome::Paid(s) => {
                    format!("查询应答：已支付，微信支付单号 {}", s.transaction_id)
                }
                QueryOutcome::NotSettled(state) => format!("查询应答：尚未完成（{state}）"),
                QueryOutcome::PayError(state) => format!("查询应答：支付失败（{state}）"),
                QueryOutcome::Closed(state) => format!("查询应答：已关闭（{state}）"),
                QueryOutcome::Refunded => "查询应答：已支付后又退款".into(),
                QueryOutcome::Unknown(u) => format!("查询应答：结果未明（{}）", unclear(u)),
            },
            Answer::Reverse(outcome) => match outcome {
                ReverseOutcome::Reversed => "撤销应答：已撤销".into(),
                ReverseOutcome::Again(u) => format!("撤销应答：需再次撤销（{}）", unclear(u)),
                ReverseOutcome::Refused(r) => format!("撤销应答：被拒绝（{}）", refusal(r)),
            },
        },
        Event::Timer { due_ms } => {
            format!("计时到：{:.1} 秒时的查询或撤销", *due_ms as f64 / 1000.0)
        }
        Event::Cancel { accepted: true } => "收银员取消支付".into(),
        Event::Cancel { accepted: false } => "收银员取消支付（已太迟，未受理）".into(),
        Event::Resumed {
            owner,
            elapsed_ms,
            refund_paid,
        } => {
            let why = if *refund_paid {
                "，按店长决定即使已支付也撤销"
            } else {
                ""
            };
            format!(
                "由 {owner} 接手（扣款请求发出后 {:.1} 秒）{why}",
                *elapsed_ms as f64 / 1000.0
            )
        }
        Event::Finished {
            state, err_code, ..
        } => {
            let state = OrderState::parse(state).map_or(state.as_str(), |s| state_name(app, s));
            match err_code {
                Some(code) => format!("结束：{state}（{code}）"),
                None => format!("结束：{state}"),
            }
        }
        Event::Note { text } => format!("备注：{text}"),
        Event::RefundOpened {
            out_refund_no,
            refund_fee,
            reason,
        } => match reason {
            Some(reason) => format!(
                "申请退款 {out_refund_no}：¥{}（原因：{reason}）",
                Fen(*refund_fee)
            ),
            None => format!("申请退款 {out_refund_no}：¥{}", Fen(*refund_fee)),
        },
        Event::RefundRequest {
            out_refund_no,
            call,
            ..
        } => match call {
            crate::payment::refund::RefundCall::Refund { attempt } => {
                format!("已发送退款请求 {out_refund_no}（第 {attempt} 次）")
            }
            crate::payment::refund::RefundCall::Query => {
                format!("已发送退款查询 {out_refund_no}")
            }
        },
        Event::RefundAnswer { answer, .. } => match answer {
            RefundReply::Refund(RefundAnswer::Accepted { refund_id }) => {
                format!("退款应答：已受理，微信退款单号 {refund_id}")
            }
            RefundReply::Refund(RefundAnswer::Again(u)) => {
                format!("退款应答：需用同一退款单号重试（{}）", unclear(u))
            }
            RefundReply::Refund(RefundAnswer::Refused(r)) if r.code == "NOTENOUGH" => {
                "退款应答：被拒绝（NOTENOUGH：商户账户余额不足）".into()
            }
            RefundReply::Refund(RefundAnswer::Refused(r)) => {
                format!("退款应答：被拒绝（{}）", r.code)
            }
            RefundReply::Query(RefundQueryAnswer::Status { status, .. }) => match status {
                RefundStatus::Success => "退款查询应答：退款成功".into(),
                RefundStatus::Processing => "退款查询应答：退款处理中".into(),
                RefundStatus::Closed => "退款查询应答：退款已关闭（REFUNDCLOSE）".into(),
                RefundStatus::Change => "退款查询应答：退款异常（CHANGE），请在商户平台处理".into(),
            },
            RefundReply::Query(RefundQueryAnswer::NotFound) => {
                "退款查询应答：微信支付没有这笔退款（REFUNDNOTEXIST）".into()
            }
            RefundReply::Query(RefundQueryAnswer::Unknown(u)) => {
                format!("退款查询应答：结果未明（{}）", unclear(u))
            }
        },
        Event::RefundFinished {
            out_refund_no,
            outcome,
        } => format!(
            "退款结束 {out_refund_no}：{}",
            crate::payment::refunding::refund_message(outcome, app.info.language)
        ),
        _ => row.summary.clone(),
    }
}

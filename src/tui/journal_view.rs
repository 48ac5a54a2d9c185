//! The manager's journal: a day's totals, takings per hour, every order, and
//! one order's event timeline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, BorderType, Cell, Paragraph, Row, Table, Wrap,
};

use super::app::{App, JournalScreen};
use crate::domain::Fen;
use crate::journal::{DayReport, EventRow, OrderRow, OrderState};

pub fn render(app: &App, journal: &JournalScreen, frame: &mut Frame) {
    let [header, body, help] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(10),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    super::till::status_lines(app, frame, header);
    let keys = if journal.detail.is_some() {
        app.t(" Esc 返回列表", " Esc back to the list")
    } else if app.journal_only {
        app.t(
            " ←→ 前后一天 · t 今天 · f 按状态筛选 · ↑↓ 选择 · Enter 订单详情 · q 退出",
            " ←→ day · t today · f filter by state · ↑↓ select · Enter order detail · q quit",
        )
    } else {
        app.t(
            " ←→ 前后一天 · t 今天 · f 按状态筛选 · ↑↓ 选择 · Enter 订单详情 · Esc 返回收银",
            " ←→ day · t today · f filter by state · ↑↓ select · Enter order detail · Esc back to the till",
        )
    };
    frame.render_widget(Paragraph::new(keys).dark_gray(), help);
    match (&journal.detail, &journal.report) {
        (Some(Ok((order, events))), _) => detail(app, order, events, frame, body),
        (Some(Err(e)), _) | (None, Some(Err(e))) => {
            let text = format!("{}: {e}", app.t("无法读取账本", "Cannot read the journal"));
            frame.render_widget(Paragraph::new(text).red().wrap(Wrap { trim: true }), body);
        }
        (None, None) => frame.render_widget(
            Paragraph::new(app.t(" 正在读取…", " Loading…")).dark_gray(),
            body,
        ),
        (None, Some(Ok(report))) => day(app, journal, report, frame, body),
    }
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
    let [title, totals, chart, table] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Min(3),
    ])
    .areas(area);
    let filter = journal
        .filter
        .map_or(app.t("全部", "all"), |s| state_name(app, s));
    let offset = app.info.store_offset;
    let heading = format!(
        " {} {} (UTC{:+03}:{:02}) · {} {} · {} {}",
        app.t("账本", "Journal"),
        report.day,
        offset.whole_hours(),
        offset.minutes_past_hour().abs(),
        app.t("筛选", "filter"),
        filter,
        report.orders.len(),
        app.t("笔订单", "orders")
    );
    frame.render_widget(Paragraph::new(heading).bold(), title);
    let s = &report.summary;
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
    frame.render_widget(Paragraph::new(totals_line), totals);
    hourly(app, &s.hourly_paid, frame, chart);
    orders(app, journal, frame, table);
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

fn orders(app: &App, journal: &JournalScreen, frame: &mut Frame, area: Rect) {
    let visible = journal.visible();
    let height = area.height.saturating_sub(3).max(1) as usize;
    // Only the rows on screen are built, so a busy day renders as fast as a quiet one.
    let first = journal.selected.saturating_sub(height - 1);
    let rows = visible
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, order)| {
            let style = if i == journal.selected {
                Style::new().reversed()
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(local_time(app, order.created_at_ms)),
                Cell::from(order.out_trade_no.to_string()),
                Cell::from(format!("{:>10}", order.total_fee.to_string())),
                Cell::from(state_name(app, order.state))
                    .style(Style::new().fg(state_color(order.state))),
                Cell::from(order.err_code.clone().unwrap_or_default()),
                Cell::from(order.transaction_id.clone().unwrap_or_default()),
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
        Constraint::Length(8),
        Constraint::Length(30),
        Constraint::Length(10),
        Constraint::Length(15),
        Constraint::Length(15),
        Constraint::Min(10),
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

fn detail(app: &App, order: &OrderRow, events: &[EventRow], frame: &mut Frame, area: Rect) {
    let [facts, timeline] =
        Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(area);
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
        Line::from(format!(" {}", order.message.as_deref().unwrap_or(""))),
    ];
    frame.render_widget(
        Paragraph::new(facts_lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().border_type(BorderType::Rounded)),
        facts,
    );
    let rows = events.iter().map(|event| {
        Row::new(vec![
            Cell::from(local_time(app, event.at_ms)),
            Cell::from(
                event
                    .since_t0_ms
                    .map_or(String::new(), |ms| format!("+{:.3} s", ms as f64 / 1000.0)),
            ),
            Cell::from(event.kind.as_str()),
            Cell::from(event.summary.clone()),
        ])
    });
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
            .block(Block::bordered().title(app.t(" 事件时间线 ", " timeline "))),
        timeline,
    );
}

//! The till screen: status lines, the amount, and what the payment is doing
//! or how it ended, large and in colour.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Gauge, Paragraph, Wrap};

use super::app::{App, Done, Fault, Network, Paying, Phase, Tone};
use super::big;
use crate::domain::{Fen, signed_yuan};
use crate::journal::OrderState;
use crate::payment::{PaymentResult, Status};
use crate::scanner::{Driver, DriverStatus};

pub fn render(app: &App, frame: &mut Frame) {
    let width = frame.area().width;
    let [header, amount, body, presets, panel, notice, help] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(8),
        Constraint::Length(1),
        Constraint::Length(u16::from(!app.info.presets.is_empty())),
        Constraint::Min(7),
        Constraint::Length(notice_height(app, width)),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    status_lines(app, frame, header);
    amount_block(app, frame, amount);
    let body_line = Line::from(vec![
        Span::raw(format!("  {}: ", app.t("商品描述", "Description"))).dark_gray(),
        Span::raw(&app.body),
    ]);
    frame.render_widget(Paragraph::new(body_line), body);
    preset_line(app, frame, presets);
    match &app.phase {
        Phase::Entering => prompt(app, frame, panel),
        Phase::Paying(paying) => paying_panel(app, paying, frame, panel),
        Phase::Done(done) => match &done.result {
            Ok(result) => result_panel(app, done, result, frame, panel),
            Err(fault) => error_panel(app, fault, frame, panel),
        },
    }
    notice_line(app, frame, notice);
    let keys = match app.phase {
        Phase::Paying(_) => app.t(" Esc 取消支付", " Esc cancel the payment"),
        _ => app.t(
            " 数字 金额 · Esc 清除 · F1–F9 预设 · F12/j 账本 · a 待处理 · q 退出",
            " digits amount · Esc clear · F1–F9 presets · F12/j journal · a attention · q quit",
        ),
    };
    frame.render_widget(Paragraph::new(keys).dark_gray(), help);
}

/// The presets and their keys: "F1 拿铁 ¥22.00 · F2 …".
fn preset_line(app: &App, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::raw(format!("  {}: ", app.words("till.presets", &[]))).dark_gray()];
    for (i, (name, amount)) in app.info.presets.iter().take(9).enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · ").dark_gray());
        }
        spans.push(Span::raw(format!("F{}", i + 1)).bold().cyan());
        spans.push(Span::raw(format!(" {name} ¥{amount}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Lines the notice needs at this width, so advice is never cut.
fn notice_height(app: &App, width: u16) -> u16 {
    let Some(notice) = &app.notice else {
        return 1;
    };
    let text = Line::from(format!(" {}", notice.text)).width();
    let width = usize::from(width.max(10)) - 2; // a wrapped word may leave a little room
    text.div_ceil(width).clamp(1, 5) as u16
}

/// The scanner driver's name as the cashier reads it.
pub fn driver_name(app: &App, driver: Driver) -> String {
    match (app.zh(), driver) {
        (true, Driver::Wedge) => "键盘模式".into(),
        (true, Driver::Serial) => "串口".into(),
        (_, driver) => driver.to_string(),
    }
}

/// Today's paid orders and takings; once refunds were issued today, the
/// takings net of them right after (the refunds themselves end the line).
fn today_text(app: &App) -> String {
    match app.today {
        Some((paid, total, Fen(0))) => format!("{paid} {} ¥{total}", app.t("笔", "paid")),
        Some((paid, total, refunded)) => format!(
            "{paid} {} ¥{total} · {} ¥{}",
            app.t("笔", "paid"),
            app.t("净收", "net"),
            signed_yuan(i128::from(total.0) - i128::from(refunded.0))
        ),
        None => "…".into(),
    }
}

/// Today's refunds, when there were any.
fn today_refunds(app: &App) -> Option<Span<'static>> {
    match app.today {
        Some((_, _, refunded)) if refunded.0 > 0 => Some(Span::raw(format!(
            " · {} ¥{refunded}",
            app.t("今日退款", "refunded today")
        ))),
        _ => None,
    }
}

/// Till, gateway, scanner, network, journal and today's takings.
pub fn status_lines(app: &App, frame: &mut Frame, area: Rect) {
    if app.journal_only {
        return journal_only_status(app, frame, area);
    }
    let (scanner_mark, scanner_style) = match &app.scanner {
        DriverStatus::Connected(_) => ("✓", Style::new().green()),
        DriverStatus::Disconnected(_) => ("…", Style::new().yellow()),
        DriverStatus::Error(_) => ("✗", Style::new().red()),
    };
    let (network, network_style) = match app.network {
        Network::Unknown => (app.t("检测中", "checking"), Style::new().dark_gray()),
        Network::Reachable => (app.t("正常", "reachable"), Style::new().green()),
        Network::Unreachable => (app.t("不通", "unreachable"), Style::new().red().bold()),
    };
    let today = today_text(app);
    let first = Line::from(vec![
        Span::raw(" scanpay ").bold().reversed(),
        Span::raw(format!(
            " {} {} · ",
            app.t("收银台", "till"),
            app.info.till_id
        )),
        Span::raw(format!(
            "{} {} · ",
            app.t("网关", "gateway"),
            app.info.gateway
        )),
        Span::raw(format!("{} ", app.t("网络", "network"))),
        Span::styled(network, network_style),
    ]);
    let recovery = match (&app.recovering[..], app.recovered) {
        ([], (0, _)) => None,
        ([], (n, _)) => Some(Span::raw(format!(" · {} {n}", app.t("已恢复", "recovered"))).green()),
        (pending, _) => Some(
            Span::raw(format!(
                " · {} {}…",
                app.t("正在恢复中断的订单", "recovering interrupted orders"),
                pending.len()
            ))
            .magenta()
            .bold(),
        ),
    };
    let attention = match app.attention.0 {
        0 => None,
        n => Some(
            Span::raw(format!(" · {}", app.words("till.attention", &[("n", &n)])))
                .magenta()
                .bold(),
        ),
    };
    let store = match app.store_behind {
        0 => None,
        n => Some(
            Span::raw(format!(
                " · {}",
                app.t(
                    &format!("门店同步落后 {n} 条"),
                    &format!("store sync behind by {n} events")
                )
            ))
            .yellow(),
        ),
    };
    let second = Line::from(
        vec![
            Span::raw(format!(
                " {} {} ",
                app.t("扫码枪", "scanner"),
                driver_name(app, app.info.driver)
            )),
            Span::styled(scanner_mark, scanner_style),
            Span::raw(format!(
                " · {} {} · ",
                app.t("账本", "journal"),
                app.info.journal_path
            )),
            Span::raw(format!("{} ", app.t("今日", "today"))),
            Span::raw(today).bold(),
        ]
        .into_iter()
        .chain(attention)
        .chain(recovery)
        .chain(today_refunds(app))
        .chain(store)
        .collect::<Vec<_>>(),
    );
    frame.render_widget(
        Paragraph::new(vec![first, second]).style(Style::new().on_black()),
        area,
    );
}

/// `scanpay journal`: no gateway, network or scanner to report, only what is read.
fn journal_only_status(app: &App, frame: &mut Frame, area: Rect) {
    let today = today_text(app);
    let first = Line::from(vec![
        Span::raw(" scanpay ").bold().reversed(),
        Span::raw(format!(
            " {} · {}",
            if app.store_view {
                app.t("门店", "store").to_string()
            } else {
                format!("{} {}", app.t("收银台", "till"), app.info.till_id)
            },
            if app.store_view {
                app.t(
                    "只读查看全店所有收银台，不收款",
                    "viewing every till of the store read-only, no payments",
                )
            } else {
                app.t(
                    "只读查看账本，不收款",
                    "viewing the journal read-only, no payments",
                )
            }
        )),
    ]);
    let second = Line::from(
        vec![
            Span::raw(format!(
                " {} {} · {} ",
                if app.store_view {
                    app.t("门店数据库", "store database")
                } else {
                    app.t("账本", "journal")
                },
                app.info.journal_path,
                app.t("今日", "today")
            )),
            Span::raw(today).bold(),
        ]
        .into_iter()
        .chain(today_refunds(app))
        .collect::<Vec<_>>(),
    );
    frame.render_widget(
        Paragraph::new(vec![first, second]).style(Style::new().on_black()),
        area,
    );
}

fn amount_block(app: &App, frame: &mut Frame, area: Rect) {
    let shown = match &app.phase {
        Phase::Paying(paying) => paying.amount.to_string(),
        // Paid (or possibly paid): the amount of that sale, not ¥0.
        Phase::Done(done) if app.amount.is_empty() => done.amount.to_string(),
        _ if app.amount.is_empty() => "0".into(),
        _ => app.amount.text().to_string(),
    };
    let text = format!("¥{shown}");
    let mut lines: Vec<Line> = big::lines(&text)
        .into_iter()
        .map(|row| Line::from(row).bold())
        .collect();
    lines.insert(0, Line::from(""));
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(format!(" {} ", app.t("金额（元）", "Amount (yuan)")));
    let style = if app.amount.is_empty() && matches!(app.phase, Phase::Entering) {
        Style::new().dark_gray()
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .style(style)
            .alignment(Alignment::Center),
        area,
    );
}

fn prompt(app: &App, frame: &mut Frame, area: Rect) {
    let text = if app.amount.value().is_ok() {
        Text::from(vec![
            Line::from(""),
            Line::from(app.t(
                "请扫描顾客的微信付款码",
                "Scan the customer's WeChat payment code",
            ))
            .bold()
            .cyan(),
        ])
    } else {
        Text::from(vec![
            Line::from(""),
            Line::from(app.t("请输入金额", "Type the amount")).dark_gray(),
        ])
    };
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .block(Block::bordered().border_type(BorderType::Rounded)),
        area,
    );
}

fn secs(d: std::time::Duration) -> u64 {
    d.as_secs_f64().ceil() as u64
}

fn paying_panel(app: &App, paying: &Paying, frame: &mut Frame, area: Rect) {
    let remaining = app.remaining(paying);
    let elapsed = paying.status_elapsed + app.now.saturating_duration_since(paying.status_at);
    let left = secs(remaining);
    let state = match &paying.status {
        // Cancelled: the deadline was brought forward to the reverse.
        Status::CustomerPaying { .. } | Status::Unclear { .. } if paying.cancel_requested => {
            app.words("till.cancelling", &[("wait", &left)])
        }
        Status::Querying if paying.cancel_requested => app.words("till.cancelling_querying", &[]),
        Status::Sending => app
            .t("正在发送支付请求…", "Sending the payment…")
            .to_string(),
        Status::CustomerPaying { .. } => app.words("till.waiting_password", &[("left", &left)]),
        Status::Unclear { next_query_at, .. } => {
            let wait = secs(next_query_at.saturating_sub(elapsed));
            app.words("till.unclear", &[("wait", &wait), ("left", &left)])
        }
        Status::Querying => app.words(
            "till.querying",
            &[("n", &paying.queries.max(1)), ("left", &left)],
        ),
        Status::ReverseDue { at, attempt } => {
            let wait = secs(at.saturating_sub(elapsed));
            app.words("till.reverse_due", &[("wait", &wait), ("attempt", attempt)])
        }
        Status::Reversing { attempt } => app.words("till.reversing", &[("attempt", attempt)]),
        Status::Confirming => app
            .t(
                "已撤销，正在确认是否已扣款…",
                "Reversed; checking whether the customer had paid…",
            )
            .to_string(),
        Status::Done(_) => app.t("正在记录结果…", "Recording the result…").to_string(),
    };
    let order = paying.out_trade_no.as_deref().unwrap_or("…");
    let mut lines = vec![Line::from(""), Line::from(state).bold().yellow()];
    let steps = match (paying.queries, paying.status.clone()) {
        (0, _) | (_, Status::Querying) => String::new(),
        (n, _) => app.words("till.queries_so_far", &[("n", &n)]),
    };
    lines.push(Line::from(steps).dark_gray());
    lines.push(
        Line::from(format!(
            "{} {} · {} {order}",
            app.t("付款码", "code"),
            paying.code,
            app.t("订单号", "order")
        ))
        .dark_gray(),
    );
    if paying.network_down {
        lines.push(
            Line::from(app.words("till.network_warning", &[]))
                .red()
                .bold(),
        );
    }
    if paying.cancel_requested {
        lines.push(Line::from(app.t("已请求取消", "Cancel requested")).magenta());
    }
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .title(format!(" {} ", app.t("支付中", "Paying")))
        .yellow();
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, gauge] = Layout::vertical([Constraint::Min(4), Constraint::Length(1)]).areas(inner);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        text,
    );
    let total = app.info.deadline.as_secs_f64().max(0.001);
    let ratio = (remaining.as_secs_f64() / total).clamp(0.0, 1.0);
    frame.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(format!("{} s", secs(remaining)))
            .gauge_style(Style::new().yellow().on_dark_gray()),
        gauge,
    );
}

fn result_panel(app: &App, done: &Done, result: &PaymentResult, frame: &mut Frame, area: Rect) {
    let (title, color) = match result.state() {
        OrderState::Paid => (app.t("✔ 支付成功", "✔ PAID"), Color::Green),
        OrderState::Failed => (app.t("✘ 支付失败", "✘ FAILED"), Color::Red),
        OrderState::Reversed | OrderState::Closed => (
            app.t("↺ 已撤销，未扣款", "↺ REVERSED — not charged"),
            Color::Yellow,
        ),
        OrderState::NeedsAttention | OrderState::Open => (
            app.t("⚠ 待处理：请勿重复收款", "⚠ NEEDS ATTENTION"),
            Color::Magenta,
        ),
    };
    let message = app.result_sentence(result, done.after_unclear);
    let mut lines = vec![Line::from(""), Line::from(title).bold(), Line::from("")];
    lines.push(Line::from(format!("¥{}", result.amount)).bold());
    lines.push(Line::from(message).bold());
    if !app.amount.is_empty() {
        lines.push(Line::from(app.t(
            "金额已保留：换一个付款码可直接重新扫码",
            "The amount is kept: scan another code to try again",
        )));
    }
    if let Some(id) = result.outcome.transaction_id() {
        lines.push(Line::from(format!(
            "{} {id}",
            app.t("微信支付单号", "transaction")
        )));
    }
    lines.push(Line::from(format!(
        "{} {}",
        app.t("订单号", "order"),
        result.out_trade_no
    )));
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .style(Style::new().fg(Color::Black).bg(color));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn error_panel(app: &App, fault: &Fault, frame: &mut Frame, area: Rect) {
    // The cause is in the log; the cashier reads what it means for the sale.
    let (title, advice) = if fault.nothing_sent {
        (
            app.t(
                "✘ 系统错误：账本无法记录，未扣款",
                "✘ SYSTEM ERROR: not recorded, not charged",
            ),
            app.words("till.fault_not_sent", &[]),
        )
    } else {
        (
            app.t(
                "⚠ 系统错误：结果未记录完整",
                "⚠ SYSTEM ERROR: the result was not fully recorded",
            ),
            app.words("till.fault_unknown", &[]),
        )
    };
    let lines = vec![
        Line::from(""),
        Line::from(title).bold(),
        Line::from(""),
        Line::from(advice),
    ];
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .style(Style::new().fg(Color::White).bg(Color::Red));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn notice_line(app: &App, frame: &mut Frame, area: Rect) {
    if let Some(notice) = &app.notice {
        let style = match notice.tone {
            Tone::Info => Style::new().cyan(),
            Tone::Warning => Style::new().yellow().add_modifier(Modifier::BOLD),
            Tone::Error => Style::new().red().add_modifier(Modifier::BOLD),
        };
        frame.render_widget(
            Paragraph::new(format!(" {}", notice.text))
                .style(style)
                .wrap(Wrap { trim: true }),
            area,
        );
    }
}

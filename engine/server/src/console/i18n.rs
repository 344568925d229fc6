//! Every label the console shows, in English and Simplified Chinese.
//! `Accept-Language` picks; the `dealrules_lang` cookie (the switch) overrides.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s == "en" || s.starts_with("en-") {
            Some(Lang::En)
        } else if s == "zh" || s.starts_with("zh-cn") || s.starts_with("zh-hans") || s == "zh-sg" {
            Some(Lang::ZhCn)
        } else {
            None
        }
    }

    /// The cookie's choice, else the first `Accept-Language` entry (by
    /// weight) the console speaks, else English.
    pub fn pick(cookie: Option<&str>, accept: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::parse) {
            return l;
        }
        let mut offered: Vec<(f32, Lang)> = accept
            .unwrap_or("")
            .split(',')
            .filter_map(|part| {
                let mut bits = part.split(';');
                let lang = Lang::parse(bits.next()?)?;
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        offered.sort_by(|a, b| b.0.total_cmp(&a.0));
        offered.first().map(|(_, l)| *l).unwrap_or(Lang::En)
    }

    /// The labels, by key, for the templates' `t`.
    pub fn labels(self) -> BTreeMap<&'static str, &'static str> {
        LABELS
            .iter()
            .map(|(k, en, zh)| (*k, if self == Lang::En { *en } else { *zh }))
            .collect()
    }
}

/// (key, English, Simplified Chinese).
pub const LABELS: &[(&str, &str, &str)] = &[
    ("title", "dealrules console", "dealrules 控制台"),
    ("skip", "Skip to content", "跳到正文"),
    ("nav_overview", "Overview", "概览"),
    ("nav_policies", "Policies", "策略"),
    ("sign_in", "Sign in", "登录"),
    ("sign_out", "Sign out", "退出"),
    ("token", "API token", "API 令牌"),
    (
        "token_help",
        "Paste a token made with `dealrules token create` or shown when the server first started.",
        "粘贴用 `dealrules token create` 创建的令牌，或服务首次启动时显示的令牌。",
    ),
    (
        "bad_token",
        "This token is not known or was revoked.",
        "此令牌无效或已被吊销。",
    ),
    ("signed_in_as", "Signed in as", "当前用户"),
    ("role", "Role", "角色"),
    ("may", "This role may", "此角色可以"),
    (
        "may_viewer",
        "read policies, status and the decision log",
        "查看策略、状态和决策日志",
    ),
    ("may_service", "decide (try a policy)", "进行决策（试用策略）"),
    (
        "may_approver",
        "approve or reject the steps assigned to it",
        "审批分配给它的步骤",
    ),
    (
        "may_admin",
        "activate packs, manage tokens, decide any step",
        "激活规则包、管理令牌、处理任何审批步骤",
    ),
    ("language", "Language", "语言"),
    ("switch", "Switch", "切换"),
    ("active_version", "Active version", "当前版本"),
    ("activated_by", "Activated by", "激活人"),
    ("activated_at", "Activated at", "激活时间"),
    ("source", "Source", "来源"),
    ("reload_errors", "Errors of the last reload", "上次重新加载的错误"),
    (
        "no_reload_errors",
        "The last reload had no errors.",
        "上次重新加载没有错误。",
    ),
    ("workers", "Background workers", "后台任务"),
    ("worker", "Worker", "任务"),
    ("state", "State", "状态"),
    ("restarts", "Restarts", "重启次数"),
    ("last_error", "Last error", "最近错误"),
    ("decisions_today", "Decisions today", "今日决策数"),
    ("decision_log_off", "The decision log is off.", "决策日志已关闭。"),
    ("kind", "Kind", "类型"),
    ("name", "Name", "名称"),
    ("file", "File", "文件"),
    ("description", "Description", "说明"),
    ("policy_source", "Source", "源文件"),
    ("summary", "Compiled summary", "编译摘要"),
    (
        "no_summary",
        "This kind has no compiled summary.",
        "此类型没有编译摘要。",
    ),
    ("try_it", "Try it", "试一试"),
    ("input", "Input (JSON)", "输入（JSON）"),
    (
        "input_help",
        "The facts to decide on, as the API takes them. Add \"why_not\": true to see why rules did not match.",
        "要决策的事实，格式同 API。加上 \"why_not\": true 可查看规则未命中的原因。",
    ),
    ("decide", "Decide", "决策"),
    ("result", "Result", "结果"),
    ("refused", "Refused", "被拒绝"),
    (
        "not_decidable",
        "This kind is not decided by the API.",
        "此类型不能通过 API 决策。",
    ),
    ("error", "Error", "错误"),
    ("forbidden", "Not allowed", "不允许"),
    (
        "csrf_refused",
        "The form was refused: its anti-forgery token is missing or wrong. Reload the page and try again.",
        "表单被拒绝：防伪令牌缺失或错误。请刷新页面后重试。",
    ),
    ("not_found", "Not found", "未找到"),
    ("back", "Back to the overview", "返回概览"),
    ("nav_approvals", "Approvals", "审批"),
    ("nav_deals", "Deals", "商机"),
    ("nav_runs", "Incentive runs", "激励核算"),
    ("nav_statements", "Statements", "提成单"),
    ("nav_decisions", "Decision log", "决策日志"),
    (
        "inbox_help",
        "The pending steps you may decide: as their approver, a member of their role, a delegate, or an admin.",
        "您可以处理的待审批步骤：您是审批人、审批角色成员、受托人或管理员。",
    ),
    ("inbox_empty", "Nothing is waiting for you.", "没有等待您处理的审批。"),
    ("notice_approved", "Approved", "已批准"),
    ("notice_rejected", "Rejected", "已驳回"),
    ("deal", "Deal", "商机"),
    ("deal_fields", "Deal fields", "商机字段"),
    (
        "deals_caption",
        "Deals by id, fifty to a page.",
        "按编号排列的商机，每页五十条。",
    ),
    ("policy", "Policy", "策略"),
    ("level", "Level", "级别"),
    ("step", "Pending step", "待处理步骤"),
    ("steps", "Steps", "步骤"),
    ("approver", "Approver", "审批人"),
    ("submitter", "Submitted by", "提交人"),
    ("requested_at", "Requested at", "申请时间"),
    ("reason", "Why approval is needed", "需要审批的原因"),
    ("rule", "Rule", "规则"),
    ("trace", "Values the policy tested", "策略检查的取值"),
    ("field", "Field", "字段"),
    ("value", "Value", "值"),
    ("comment", "Comment", "意见"),
    (
        "comment_help",
        "Optional; kept with the decision in the deal's history.",
        "可选；与审批结果一起记入商机历史。",
    ),
    ("approve", "Approve", "批准"),
    ("reject", "Reject", "驳回"),
    ("stage", "Stage", "阶段"),
    ("owner", "Owner", "负责人"),
    ("funnel", "Funnel", "销售流程"),
    ("amount", "Amount", "金额"),
    ("updated_at", "Updated at", "更新时间"),
    ("created_at", "Created at", "创建时间"),
    ("revision", "Revision", "修订号"),
    ("since", "Since", "起始"),
    ("until", "Until", "截止"),
    ("timers", "Timers", "定时器"),
    ("due_at", "Due at", "到期时间"),
    ("outbox", "Notifications", "通知"),
    ("template", "Template", "模板"),
    ("recipient", "Recipient", "收件人"),
    ("attempts", "Attempts", "尝试次数"),
    ("history", "History", "历史"),
    ("at", "At", "时间"),
    ("event", "Event", "事件"),
    ("actor", "By", "操作人"),
    ("version", "Pack version", "规则包版本"),
    ("detail", "Detail", "详情"),
    ("no_rows", "Nothing here yet.", "暂无内容。"),
    ("pages", "Pages", "分页"),
    ("first_page", "First page", "第一页"),
    ("next_page", "Next page", "下一页"),
    ("back_deals", "Back to the deals", "返回商机列表"),
    ("back_runs", "Back to the runs", "返回核算列表"),
    ("back_decisions", "Back to the decision log", "返回决策日志"),
    ("run", "Run", "核算"),
    ("plan", "Plan", "激励方案"),
    ("period", "Period", "期间"),
    (
        "period_help",
        "A quarter (2026-Q1), a month (2026-03) or a year (2026), as the plan pays.",
        "按方案的结算周期填写：季度（2026-Q1）、月份（2026-03）或年份（2026）。",
    ),
    ("start_run", "Start a run", "开始核算"),
    ("filter", "Filter", "筛选"),
    ("any", "Any", "全部"),
    ("reps", "Reps", "销售人数"),
    ("total", "Total", "合计"),
    ("started_by", "Started by", "发起人"),
    ("started_at", "Started at", "发起时间"),
    ("approved_by", "Approved by", "批准人"),
    ("published_by", "Published by", "发布人"),
    ("locked_by", "Locked by", "锁定人"),
    ("progress", "Progress", "进度"),
    (
        "run_running",
        "The statements are being computed; this page shows the run when it is done.",
        "正在计算提成单；完成后本页显示结果。",
    ),
    ("refresh", "Refresh", "刷新"),
    ("run_approve", "Approve the run", "批准核算"),
    (
        "run_approve_help",
        "An admin other than the one who started the run approves it.",
        "须由发起人以外的管理员批准。",
    ),
    ("run_publish", "Publish the statements", "发布提成单"),
    (
        "run_publish_help",
        "Reps and their managers can then read their statements.",
        "发布后销售及其经理可查看提成单。",
    ),
    ("run_lock", "Lock the period", "锁定期间"),
    (
        "run_lock_help",
        "The statements never change again and the period cannot be run again.",
        "锁定后提成单不再变化，该期间不能再次核算。",
    ),
    ("export", "Payroll export", "薪资导出"),
    ("paid_by_rep", "What each rep is paid", "每位销售的提成"),
    ("rep", "Rep", "销售"),
    (
        "rep_help",
        "Your own id shows your statement; a manager may read their reports'.",
        "填写自己的编号查看本人提成单；经理可查看下属的提成单。",
    ),
    ("which_statement", "Which statement", "查看哪份提成单"),
    ("show", "Show", "显示"),
    ("st_lines", "Lines", "明细"),
    ("decision", "Decision", "决策"),
    ("decided_at", "Decided at", "决策时间"),
    ("outcome", "Outcome", "结果"),
    ("subject", "Asked by", "请求方"),
    (
        "time_help",
        "A date (2026-03-01) or a time (2026-03-01T09:00:00Z).",
        "日期（2026-03-01）或时间（2026-03-01T09:00:00Z）。",
    ),
    ("replay", "Replay", "重放"),
    (
        "replay_help",
        "Decides the logged input again on the pack version that decided it, with the same time.",
        "用当时的规则包版本和相同时间重新决策记录的输入。",
    ),
    (
        "replay_same",
        "The replay gives the same answer.",
        "重放结果与原结果相同。",
    ),
    (
        "replay_differs",
        "The replay gives a different answer.",
        "重放结果与原结果不同。",
    ),
    ("replayed_answer", "The replayed answer", "重放结果"),
    ("state_pending", "pending", "待处理"),
    ("state_approved", "approved", "已批准"),
    ("state_rejected", "rejected", "已驳回"),
    ("state_recalled", "recalled", "已撤回"),
    ("state_waiting", "waiting", "等待中"),
    ("state_skipped", "skipped", "已跳过"),
    ("state_scheduled", "scheduled", "已排定"),
    ("state_fired", "fired", "已触发"),
    ("state_cancelled", "cancelled", "已取消"),
    ("state_sent", "sent", "已发送"),
    ("state_failed", "failed", "失败"),
    ("state_running", "running", "计算中"),
    ("state_draft", "draft", "草稿"),
    ("state_published", "published", "已发布"),
    ("state_locked", "locked", "已锁定"),
    ("state_replaced", "replaced", "已替换"),
    ("worker_running", "running", "运行中"),
    ("worker_restarting", "restarting", "重启中"),
    ("worker_stopped", "stopped", "已停止"),
    ("source_directory", "the rules folder", "规则目录"),
    ("source_upload", "an upload", "上传"),
    ("source_rollback", "a rollback", "回滚"),
    ("kind_DecisionTable", "DecisionTable", "决策表"),
    ("kind_Calculation", "Calculation", "计算"),
    ("kind_ApprovalPolicy", "ApprovalPolicy", "审批策略"),
    ("kind_Funnel", "Funnel", "销售流程"),
    ("kind_IncentivePlan", "IncentivePlan", "激励方案"),
    ("kind_Targets", "Targets", "业绩目标"),
    ("kind_Plugin", "Plugin", "插件"),
    ("event_created", "created", "创建"),
    ("event_update", "fields changed", "字段变更"),
    ("event_move", "moved", "阶段变更"),
    ("event_refused", "move refused", "变更被拒绝"),
    ("event_approval", "approval", "审批"),
    ("event_timer", "timer", "定时器"),
    ("event_cancelled", "timer cancelled", "定时器取消"),
    ("event_action", "action", "动作"),
    ("event_action_failed", "action failed", "动作失败"),
    ("event_import", "imported", "导入"),
    ("timer_funnel", "funnel timer", "流程定时器"),
    ("timer_remind", "reminder", "提醒"),
    ("timer_escalate", "escalation", "升级"),
    ("outcome_ok", "decided", "已决策"),
    ("outcome_error", "error", "出错"),
    ("st_basis", "Basis", "计算基数"),
    ("st_explain", "How it was computed", "计算方式"),
    ("st_by_deal", "By deal", "按商机"),
    ("st_pace.elapsed", "Share of the period gone by", "期间已过比例"),
    ("st_pace.attainment", "Attainment so far", "当前完成率"),
    ("st_pace.ratio", "Pace", "进度比"),
    ("st_pace.alert", "Behind pace", "进度落后"),
    ("st_pace.below", "Alert below", "预警阈值"),
    ("st_clawback", "Clawback", "追回"),
    ("st_adjustment", "Adjustment", "调整"),
    ("st_id", "Component", "组成部分"),
    ("st_type", "Type", "类型"),
    ("st_rep", "Rep", "销售"),
    ("st_period", "Period", "期间"),
    ("st_currency", "Currency", "币种"),
    ("st_credit", "Credited bookings", "计入业绩"),
    ("st_quota", "Quota", "指标"),
    ("st_attainment", "Attainment", "完成率"),
    ("st_earned", "Earned", "应得提成"),
    ("st_total", "Total", "合计"),
    ("st_draw", "Draw", "预支"),
    ("st_adjustments", "Adjustments", "调整"),
    ("st_paid", "Paid", "实发"),
    ("st_component", "Component", "组成部分"),
    ("st_deals", "Deals", "商机"),
    ("st_amount", "Amount", "金额"),
    ("st_rate", "Rate", "比例"),
    // Targets and pace, the funnel and the forecast.
    ("nav_targets", "Targets and pace", "目标与进度"),
    ("nav_funnel", "Funnel and forecast", "漏斗与预测"),
    (
        "tg_help",
        "Progress against each Targets policy on the deals won: target, actual, attainment, and pace (attainment over the share of the period gone by).",
        "按已赢单商机衡量各业绩目标的进度：目标、实际、完成率，以及进度比（完成率除以期间已过比例）。",
    ),
    (
        "tg_none",
        "The active pack has no Targets policy.",
        "当前规则包没有业绩目标策略。",
    ),
    ("tg_policies", "Targets policies", "业绩目标策略"),
    ("tg_which", "Which progress", "查看哪项进度"),
    (
        "tg_period_help",
        "A quarter (2026-Q1), a month (2026-03) or the year (2026), in the targets' year.",
        "目标年度内的季度（2026-Q1）、月份（2026-03）或全年（2026）。",
    ),
    ("tg_by", "Rows by", "行分组"),
    ("by_rep", "Rep", "销售"),
    ("by_region", "Region", "区域"),
    ("by_team", "Team", "团队"),
    ("by_product", "Product", "产品"),
    ("by_channel", "Channel", "渠道"),
    ("by_month", "Month", "月份"),
    ("by_owner", "Owner", "负责人"),
    ("tg_measure", "Measure", "衡量指标"),
    ("tg_today", "Measured on", "衡量日期"),
    ("tg_elapsed", "Period gone by", "期间已过"),
    ("tg_below", "Alert when pace is below", "进度比低于此值时预警"),
    ("tg_alerts", "Rows behind pace", "落后行数"),
    (
        "tg_adjusted",
        "The targets were adjusted during this period: progress before the adjustment's date uses the old figure, after it the new one.",
        "本期间内目标已调整：调整日期之前按原目标计算，之后按新目标计算。",
    ),
    (
        "tg_figures",
        "The year's totals in force during the period",
        "本期间内生效的年度目标总额",
    ),
    ("tg_from", "From", "自"),
    ("tg_to", "To", "至"),
    ("tg_year_total", "Year's total", "年度总额"),
    ("tg_reason", "Why it changed", "调整原因"),
    (
        "tg_caption",
        "Target, actual and pace per row.",
        "每行的目标、实际与进度。",
    ),
    ("tg_target", "Target", "目标"),
    ("tg_actual", "Actual", "实际"),
    ("tg_pace", "Pace", "进度比"),
    ("tg_bar", "Chart", "图示"),
    ("tg_alert", "Alert", "预警"),
    ("tg_behind", "Behind pace", "进度落后"),
    ("tg_on_pace", "On pace", "进度正常"),
    ("tg_manager_told", "manager told:", "已通知经理："),
    (
        "tg_bar_help",
        "The bar is attainment; the solid line marks the share of the period gone by, the dashed line the whole target.",
        "条形为完成率；实线标出期间已过比例，虚线标出全部目标。",
    ),
    ("tg_unplaced", "Reps the targets cannot place", "无法分配目标的销售"),
    (
        "fn_help",
        "Per stage, from the deals' history: visits entered, advanced, lost and moved back, conversion, days in stage, and the deals in the stage now.",
        "按阶段统计商机历史：进入、推进、丢单和退回次数，转化率，停留天数，以及当前在该阶段的商机。",
    ),
    ("fn_none", "The active pack has no Funnel.", "当前规则包没有销售流程。"),
    ("fn_by", "Also by", "另按"),
    ("fn_by_none", "Totals only", "仅合计"),
    (
        "fn_time_help",
        "Count the stage visits that began in this window: dates (2026-03-01) or times (2026-03-01T09:00:00Z); empty for all.",
        "统计在此时间范围内开始的阶段停留：日期（2026-03-01）或时间（2026-03-01T09:00:00Z）；留空表示全部。",
    ),
    ("fn_entered", "Entered", "进入"),
    ("fn_advanced", "Advanced", "推进"),
    ("fn_lost", "Lost", "丢单"),
    ("fn_back", "Moved back", "退回"),
    ("fn_to_next", "To next stage", "转入下一阶段"),
    ("fn_to_won", "To won", "最终赢单"),
    ("fn_median", "Median days", "停留天数中位数"),
    ("fn_p90", "P90 days", "停留天数 P90"),
    ("fn_open", "Open now", "当前在途"),
    ("fn_weighted", "Weighted amount", "加权金额"),
    ("fn_stalled", "Stalled", "停滞"),
    ("fn_gone", "not in the active pack", "不在当前规则包中"),
    ("fn_days", "days", "天"),
    ("fn_sla", "time limit", "时限"),
    ("fn_deals", "Deals in the funnel", "流程内商机数"),
    ("fn_now", "Measured at", "统计时间"),
    ("fn_caption", "Stage by stage.", "逐阶段统计。"),
    ("fc_title", "Forecast", "预测"),
    (
        "fc_help",
        "The open pipeline by the quarter of its close date, weighed by each stage's configured probability and by the win rate measured from history.",
        "按预计成交日期所在季度汇总在途商机，分别按各阶段配置的概率和历史实测赢单率加权。",
    ),
    ("fc_caption", "Weighted pipeline by period.", "按期间的加权管道。"),
    ("fc_configured", "Weighted (configured)", "加权（配置概率）"),
    ("fc_measured", "Weighted (measured)", "加权（实测赢单率）"),
    (
        "fc_bar_help",
        "Upper bar: configured probabilities; lower bar: measured win rates.",
        "上方条形：配置概率；下方条形：实测赢单率。",
    ),
    ("fc_rates", "Each stage's two rates", "各阶段的两种比率"),
    ("fc_configured_rate", "Configured probability", "配置概率"),
    ("fc_measured_rate", "Measured win rate", "实测赢单率"),
    ("fc_resolved", "Visits resolved", "已有结果的停留次数"),
    (
        "fc_off",
        "A measured win rate in bold is ten points or more from the configured probability: the configured one may be wrong.",
        "加粗的实测赢单率与配置概率相差十个百分点以上：配置概率可能有误。",
    ),
    ("nav_changes", "Changes", "规则变更"),
    ("chg_heading", "Change requests", "规则变更请求"),
    ("chg_change", "Change request", "变更请求"),
    ("chg_new", "Open a new change", "新建变更"),
    ("chg_title_field", "Title", "标题"),
    (
        "chg_new_help",
        "The draft starts from the active pack; open its files on the next page to edit them.",
        "草稿以当前生效的规则包为基础；在下一页打开文件进行编辑。",
    ),
    ("chg_author", "Author", "作者"),
    ("chg_base", "Base version", "基准版本"),
    ("chg_files", "Files", "文件"),
    ("chg_validation", "Validation and tests", "校验与测试"),
    ("chg_valid", "Passes", "通过校验"),
    ("chg_invalid", "Does not pass", "未通过校验"),
    ("chg_rollback", "Roll back to a stored version", "回滚到已存储的版本"),
    (
        "chg_rollback_help",
        "A rollback is itself a change: a second admin approves it, unless it is an emergency.",
        "回滚本身也是一次变更：须由第二位管理员批准，紧急回滚除外。",
    ),
    (
        "chg_emergency",
        "Emergency: activate at once, without a second admin (recorded as such)",
        "紧急回滚：立即生效，无需第二位管理员（将如实记录）",
    ),
    ("chg_start_rollback", "Open the rollback", "发起回滚"),
    (
        "chg_rollback_this",
        "Roll back to the version before this change",
        "回滚到此变更之前的版本",
    ),
    (
        "chg_emergency_done",
        "Emergency rollback, activated without a second admin",
        "紧急回滚，未经第二位管理员批准即已生效",
    ),
    ("chg_candidate", "Candidate version", "候选版本"),
    ("chg_scheduled_for", "Activates at", "计划生效时间"),
    ("chg_activation", "Activation", "生效记录"),
    (
        "chg_conflicts",
        "Files this change changes were changed in the active pack since its base; save with a rebase after editing them",
        "本变更修改的文件在基准版本之后已被生效规则包修改；请编辑后变基保存",
    ),
    ("chg_tests_passed", "Tests passed", "测试通过"),
    ("chg_tests_failed", "Tests failed", "测试失败"),
    (
        "chg_no_errors",
        "No errors: the candidate builds and its tests pass.",
        "没有错误：候选规则包可以构建，测试全部通过。",
    ),
    (
        "chg_errors_elsewhere",
        "Errors in files not open here",
        "未在此打开的文件中的错误",
    ),
    ("chg_line", "Line", "行"),
    ("chg_column", "column", "列"),
    ("chg_open", "Open", "打开"),
    (
        "chg_open_file",
        "Open a file of the base to edit it",
        "打开基准版本中的文件进行编辑",
    ),
    (
        "chg_read_only",
        "Only its author edits a draft, and only while it is a draft: this change is shown read-only.",
        "只有作者可以编辑草稿，且仅限草稿状态：此变更以只读方式显示。",
    ),
    (
        "chg_no_files",
        "The change holds no files yet.",
        "此变更尚未包含任何文件。",
    ),
    ("chg_text_of", "Text of", "文件内容："),
    ("chg_save", "Save and validate", "保存并校验"),
    ("chg_delete_file", "Delete this file", "删除此文件"),
    ("chg_add_file", "Add a new file", "添加新文件"),
    ("chg_path", "Path", "路径"),
    (
        "chg_path_help",
        "Relative to the pack, such as tables/new-table.yaml",
        "相对于规则包的路径，例如 tables/new-table.yaml",
    ),
    ("chg_new_text", "Its text", "文件内容"),
    ("chg_diff", "Diff against the base", "与基准版本的差异"),
    ("chg_moves", "Review and activation", "审核与生效"),
    (
        "chg_four_eyes",
        "Four eyes: an admin other than the author approves.",
        "四眼原则：须由作者以外的管理员批准。",
    ),
    (
        "chg_no_moves",
        "This change has ended: nothing more can be done with it.",
        "此变更已结束，不能再进行任何操作。",
    ),
    (
        "chg_activate_at",
        "Activate at (UTC; empty: at once)",
        "生效时间（UTC；留空则立即生效）",
    ),
    (
        "chg_submit_disabled",
        "It cannot be submitted: it has errors, failing tests or conflicts.",
        "无法提交：存在错误、未通过的测试或冲突。",
    ),
    ("chg_from", "From", "原状态"),
    ("chg_to", "To", "新状态"),
    ("chg_back", "All change requests", "全部变更请求"),
    ("act_submit", "Submit for approval", "提交审批"),
    ("act_approve", "Approve and activate", "批准并生效"),
    ("act_reject", "Reject the change", "驳回变更"),
    ("act_cancel", "Cancel the change", "取消变更"),
    ("chgkind_change", "rule change", "规则变更"),
    ("chgkind_rollback", "rollback", "回滚"),
    ("fstatus_added", "added", "新增"),
    ("fstatus_modified", "modified", "已修改"),
    ("fstatus_deleted", "deleted", "已删除"),
    ("fstatus_opened", "opened, not changed yet", "已打开，尚未修改"),
    ("state_submitted", "submitted", "已提交"),
    ("state_active", "active", "已生效"),
    ("state_done", "done", "已完成"),
    ("imp_title", "Impact on real history", "对历史数据的影响"),
    (
        "imp_since",
        "Replay decisions logged since (YYYY-MM-DD; empty: none)",
        "重放此日期以来记录的决策（YYYY-MM-DD；留空则不重放）",
    ),
    (
        "imp_periods",
        "Recompute incentive periods (such as 2026-Q1, 2026-11)",
        "重算激励期间（例如 2026-Q1、2026-11）",
    ),
    ("imp_start", "Measure the impact", "评估影响"),
    (
        "imp_running",
        "Measuring; this page refreshes itself every second.",
        "正在评估；本页每秒自动刷新。",
    ),
    ("imp_phase", "Phase", "阶段"),
    ("imp_decisions_replayed", "Decisions replayed", "已重放的决策"),
    ("imp_incentives_done", "Plan periods recomputed", "已重算的方案期间"),
    ("imp_deals_checked", "Deals checked", "已检查的商机"),
    ("imp_failed", "The impact could not be measured", "无法评估影响"),
    (
        "imp_versions",
        "Active version, then the candidate",
        "生效版本与候选版本",
    ),
    ("imp_payouts", "Payouts by rep", "按销售的提成变化"),
    ("imp_reps_changed", "Reps paid differently", "提成有变化的销售"),
    ("imp_before", "Before", "变更前"),
    ("imp_after", "After", "变更后"),
    ("imp_delta", "Delta", "差额"),
    ("imp_chart", "Change in payout per rep", "各销售提成变化"),
    (
        "imp_rows_shown",
        "Shown, largest changes first",
        "显示数量（变化最大者优先）",
    ),
    (
        "imp_decisions",
        "Decisions replayed on both packs",
        "在两个版本上重放的决策",
    ),
    ("imp_replayed", "Replayed", "已重放"),
    ("imp_changed", "Changed", "有变化"),
    ("imp_by_policy", "By policy", "按策略"),
    ("imp_examples", "Decisions that would change", "将会变化的决策"),
    ("imp_fields", "Fields that differ", "不同的字段"),
    ("imp_funnels", "Funnel effects", "流程影响"),
    ("imp_open_deals", "Open deals checked", "已检查的进行中商机"),
    (
        "imp_refused_moves",
        "Moves the change would refuse",
        "变更后将被拒绝的阶段推进",
    ),
    (
        "imp_cancelled_timers",
        "Timers the change would cancel",
        "变更后将被取消的定时器",
    ),
    ("imp_to", "To stage", "目标阶段"),
    ("imp_refused_why", "Why it is refused", "拒绝原因"),
    ("imp_cancelled_why", "Why it is cancelled", "取消原因"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_overrides_accept_language() {
        assert_eq!(Lang::pick(None, Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::ZhCn);
        assert_eq!(Lang::pick(None, Some("fr, en;q=0.5, zh;q=0.7")), Lang::ZhCn);
        assert_eq!(Lang::pick(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::pick(None, None), Lang::En);
    }

    #[test]
    fn every_label_has_both_languages() {
        for (key, en, zh) in LABELS {
            assert!(!en.is_empty() && !zh.is_empty(), "{key}");
            assert!(!zh.is_ascii(), "{key} has no Chinese text");
        }
    }
}

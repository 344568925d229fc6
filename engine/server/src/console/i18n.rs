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

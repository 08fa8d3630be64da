"""The console's words in English and Bengali, the language picked from the operator's browser
(Accept-Language, negotiated with Babel), and numbers formatted as the flows' screens do
(server/render/formatting.py: Babel, Bengali digits in Bengali)."""
from __future__ import annotations

from typing import Any

from babel import Locale, UnknownLocaleError

from ..render.formatting import format_number

LANGUAGES = ("en", "bn")

_TEXTS: dict[str, tuple[str, str]] = {  # key: (English, Bengali)
    "console": ("Alap console", "আলাপ কনসোল"),
    "flows": ("Flows", "ফ্লো"),
    "ledger": ("Recharge ledger", "রিচার্জ খতিয়ান"),
    "subscriber": ("Subscriber", "গ্রাহক"),
    "lookup": ("Look up", "খুঁজুন"),
    "number_placeholder": ("01XXXXXXXXX", "০১XXXXXXXXX"),
    "flow": ("Flow", "ফ্লো"),
    "today": ("Today", "আজ"),
    "yesterday": ("Yesterday", "গতকাল"),
    "last7": ("Last 7 days", "গত ৭ দিন"),
    "started": ("Started", "শুরু"),
    "completed": ("Completed", "সম্পন্ন"),
    "abandoned": ("Abandoned", "ছেড়ে গেছে"),
    "failed": ("Failed", "ব্যর্থ"),
    "resumed": ("Resumed", "আবার শুরু"),
    "entered": ("entered", "প্রবেশ"),
    "left": ("abandoned", "ছেড়ে গেছে"),
    "state": ("State", "ধাপ"),
    "kind": ("Kind", "ধরন"),
    "heaviest": ("Heaviest drop-off", "সবচেয়ে বেশি ছেড়ে যাওয়া"),
    "no_dropoff": ("No drop-off in this period.", "এই সময়ে কেউ ছেড়ে যায়নি।"),
    "transitions": ("Transitions", "ধাপ বদল"),
    "share": ("share", "অংশ"),
    "picture": ("Picture of the flow", "ফ্লোর ছবি"),
    "records": ("Records", "রেকর্ড"),
    "all_states": ("All states", "সব অবস্থা"),
    "record": ("Record", "রেকর্ড"),
    "history": ("History", "ইতিহাস"),
    "when": ("When", "কখন"),
    "note": ("Note", "নোট"),
    "by": ("By", "কে"),
    "resolve": ("Resolve", "নিষ্পত্তি করুন"),
    "resolve_help": ("Say what was done outside Alap (refund reference, eCare confirmation...).",
                     "আলাপের বাইরে কী করা হয়েছে লিখুন (রিফান্ড নম্বর, ই-কেয়ার নিশ্চিতকরণ...)।"),
    "resolved_ok": ("The record is resolved.", "রেকর্ডটির নিষ্পত্তি হয়েছে।"),
    "amount": ("Amount", "পরিমাণ"),
    "payer": ("Payer", "প্রদানকারী"),
    "recipient": ("Recipient", "প্রাপক"),
    "created": ("Created", "তৈরি"),
    "none": ("None.", "কিছু নেই।"),
    "profile": ("Profile", "প্রোফাইল"),
    "lang_label": ("Language", "ভাষা"),
    "default": ("default", "ডিফল্ট"),
    "opted_out": ("Opted out of SMS", "এসএমএস বন্ধ"),
    "yes": ("yes", "হ্যাঁ"),
    "no": ("no", "না"),
    "live_session": ("Live session", "চলতি সেশন"),
    "no_session": ("No open session.", "কোনো খোলা সেশন নেই।"),
    "version": ("Version", "সংস্করণ"),
    "variables": ("Variables", "ভেরিয়েবল"),
    "recent_recharges": ("Recent recharges", "সাম্প্রতিক রিচার্জ"),
    "active": ("Open sessions now", "এখন খোলা সেশন"),
    "needs_you": ("Records that need an operator", "যে রেকর্ডে অপারেটর দরকার"),
    "login": ("Log in", "লগ ইন"),
    "token": ("Admin token", "অ্যাডমিন টোকেন"),
    "login_help": ("Scripts and curl may use HTTP Basic instead: user admin, the token as password.",
                   "স্ক্রিপ্ট ও curl এর বদলে HTTP Basic ব্যবহার করতে পারে: ইউজার admin, পাসওয়ার্ড টোকেন।"),
    "login_prompt": ("Use the browser's password prompt", "ব্রাউজারের পাসওয়ার্ড প্রম্পট ব্যবহার করুন"),
    "error": ("Error", "ত্রুটি"),
    "back_home": ("Back to the console", "কনসোলে ফিরুন"),
    "err_unauthorized": ("Wrong or missing admin token.", "অ্যাডমিন টোকেন ভুল বা নেই।"),
    "err_limited": ("Too many failed attempts from your address. Wait a few minutes.",
                    "আপনার ঠিকানা থেকে অনেকবার ভুল চেষ্টা হয়েছে। কয়েক মিনিট অপেক্ষা করুন।"),
    "err_page": ("There is no console page at {name}.", "{name} ঠিকানায় কনসোলের কোনো পাতা নেই।"),
    "err_flow": ("There is no flow named “{name}”.", "“{name}” নামে কোনো ফ্লো নেই।"),
    "err_range": ("Unknown period “{name}”: use today, yesterday or 7d.",
                  "অজানা সময় “{name}”: today, yesterday বা 7d দিন।"),
    "err_number": ("“{name}” is not a Bangladeshi mobile number (01XXXXXXXXX).",
                   "“{name}” বাংলাদেশি মোবাইল নম্বর নয় (০১XXXXXXXXX)।"),
    "err_record": ("There is no recharge record “{name}”.", "“{name}” নামে কোনো রিচার্জ রেকর্ড নেই।"),
    "err_state": ("Unknown ledger state “{name}”.", "অজানা খতিয়ান অবস্থা “{name}”।"),
    "err_csrf": ("The form was not sent from this console (missing or wrong form token). Nothing was changed.",
                 "ফর্মটি এই কনসোল থেকে পাঠানো হয়নি (ফর্ম টোকেন নেই বা ভুল)। কিছু বদলানো হয়নি।"),
    "err_note": ("A note saying what was done is required. Nothing was changed.",
                 "কী করা হয়েছে তা জানিয়ে একটি নোট লাগবে। কিছু বদলানো হয়নি।"),
    "err_conflict": ("Only NEEDS_REVIEW and REFUND_REQUIRED records can be resolved; this one is {name}.",
                     "শুধু NEEDS_REVIEW ও REFUND_REQUIRED রেকর্ডের নিষ্পত্তি করা যায়; এটি {name}।"),
    "err_store": ("The store is unreachable right now. Try again shortly.",
                  "এই মুহূর্তে স্টোরে পৌঁছানো যাচ্ছে না। একটু পরে চেষ্টা করুন।"),
}


def pick_language(accept_language: str | None) -> str:
    """bn or en from an Accept-Language header (English when neither is asked for)."""
    preferences: list[tuple[float, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            preferences.append((-quality + position * 1e-6, tag.strip()))
    ordered = [tag for _, tag in sorted(preferences) if tag != "*"]
    try:
        return str(Locale.negotiate(ordered, list(LANGUAGES), sep="-") or "en")
    except (UnknownLocaleError, ValueError):
        return "en"


class Words:
    """`words.key` or `words("key", name=...)` in templates; `words.n(1234)` formats a number."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._column = LANGUAGES.index(language)

    def __getattr__(self, key: str) -> str:
        try:
            return _TEXTS[key][self._column]
        except KeyError:
            raise AttributeError(key) from None

    def __call__(self, key: str, **values: Any) -> str:
        return _TEXTS[key][self._column].format(**values)

    def n(self, value: Any) -> str:
        return format_number(value, self.language)

    def percent(self, part: int, whole: int) -> str:
        share = round(100 * part / whole) if whole else 0
        return f"{format_number(share, self.language)}%"

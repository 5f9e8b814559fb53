"""Each BLOOM language's name in its own script (endonym), keyed by BLOOM code."""

NATIVE_NAMES: dict[str, str] = {
    "en": "English", "fr": "Français", "es": "Español", "pt": "Português",
    "ar": "العربية", "vi": "Tiếng Việt", "id": "Bahasa Indonesia", "ca": "Català",
    "eu": "Euskara", "zhs": "简体中文", "zht": "繁體中文", "hi": "हिन्दी",
    "bn": "বাংলা", "ta": "தமிழ்", "te": "తెలుగు", "ml": "മലയാളം",
    "kn": "ಕನ್ನಡ", "mr": "मराठी", "gu": "ગુજરાતી", "pa": "ਪੰਜਾਬੀ",
    "or": "ଓଡ଼ିଆ", "as": "অসমীয়া", "ne": "नेपाली", "ur": "اردو",
    "sw": "Kiswahili", "yo": "Yorùbá", "ig": "Asụsụ Igbo", "rw": "Ikinyarwanda",
    "xh": "isiXhosa", "zu": "isiZulu", "sn": "chiShona", "lg": "Luganda",
    "wo": "Wolof", "rn": "Ikirundi", "fon": "Fɔngbè", "nso": "Sesotho sa Leboa",
    "ln": "Lingála", "tn": "Setswana", "ny": "Chicheŵa", "st": "Sesotho",
    "ts": "Xitsonga", "ak": "Akan", "tw": "Twi", "bm": "Bamanankan",
    "ki": "Gĩkũyũ", "tum": "chiTumbuka",
}  # fmt: skip

BCP47: dict[str, str] = {"zhs": "zh-Hans", "zht": "zh-Hant"}
"""BLOOM codes that are not already valid BCP 47 tags (for the ``lang`` attribute)."""

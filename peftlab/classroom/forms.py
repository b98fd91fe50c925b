"""The forms of the class pages: join, create a class, its settings."""

from django import forms

from peftlab.classroom import names
from peftlab.classroom.models import CODE_LENGTH, NICKNAME_MAX, SETTING_LABELS, Classroom, normalize_code
from peftlab.runs import races
from simulations import experiments
from workers import methods


def _refuse_hidden(text: str, what: str) -> str:
    """`text`, or the form error that names its invisible or bidi control character."""
    try:
        return names.refuse_hidden(text, what)
    except names.HiddenCharacter as exc:
        raise forms.ValidationError(str(exc)) from None


class JoinForm(forms.Form):
    code = forms.CharField(
        label="Class code",
        max_length=2 * CODE_LENGTH,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": "e.g. K7QX2M",
            }
        ),
    )
    nickname = forms.CharField(
        label="Your nickname",
        max_length=NICKNAME_MAX,
        strip=True,
        help_text=f"1 to {NICKNAME_MAX} characters; your teacher and only your teacher sees it beside your runs.",
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )

    def clean_code(self):
        return normalize_code(self.cleaned_data["code"])

    def clean_nickname(self):
        nickname = " ".join(self.cleaned_data["nickname"].split())
        if not nickname:
            raise forms.ValidationError("type a nickname")
        _refuse_hidden(nickname, "the nickname")
        if any(not ch.isprintable() for ch in nickname):
            raise forms.ValidationError("a nickname is letters, digits, spaces and punctuation")
        return nickname


class NewClassroomForm(forms.ModelForm):
    class Meta:
        model = Classroom
        fields = ["name"]
        labels = {"name": "Name of the class"}
        widgets = {"name": forms.TextInput(attrs={"placeholder": "e.g. NLP seminar, Tuesday group"})}

    def clean_name(self):
        return _refuse_hidden(self.cleaned_data["name"], "the name of the class")


class SettingsForm(forms.ModelForm):
    allowed_methods = forms.MultipleChoiceField(
        label=SETTING_LABELS["allowed_methods"],
        widget=forms.CheckboxSelectMultiple,
        choices=[(m.name, m.label) for m in methods.METHODS.values()],
    )

    class Meta:
        model = Classroom
        fields = [
            "allowed_methods",
            "max_steps",
            "max_run_minutes",
            "max_concurrent_per_student",
            "daily_runs_per_student",
        ]
        labels = {name: SETTING_LABELS[name] for name in fields[1:]}
        help_texts = {
            "max_steps": f"1 to {methods.MAX_STEPS}.",
            "max_run_minutes": "1 to 600. Estimated before a run is queued from its steps, batch size, "
            "evaluations and its method's measured speed on the CPU worker; a run "
            "estimated past it is refused with the settings that would fit.",
            "max_concurrent_per_student": (
                "A race or a sweep counts as one here: a race trains its lanes together, a sweep one "
                "after another. With 1, a student can still race the four methods."
            ),
            "daily_runs_per_student": (
                "Counted from midnight, server time; a race or a sweep counts every run it trains "
                f"(a race {len(races.DEFAULT_METHODS)} by default, the default rank sweep "
                f"{len(experiments.DEFAULT_RANKS) * experiments.MAX_SIZES})."
            ),
        }
        widgets = {
            f: forms.NumberInput(attrs={"min": 1})
            for f in ("max_steps", "max_run_minutes", "max_concurrent_per_student", "daily_runs_per_student")
        }

from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "classroom"
    verbose_name = "Classes: teachers, join codes, students, quotas"
    default_auto_field = "django.db.models.BigAutoField"

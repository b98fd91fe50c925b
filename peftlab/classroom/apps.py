from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "peftlab.classroom"
    verbose_name = "Classes: teachers, join codes, students, quotas"
    default_auto_field = "django.db.models.BigAutoField"

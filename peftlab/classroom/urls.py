from django.urls import path

from peftlab.classroom import views

app_name = "classroom"

urlpatterns = [
    path("join/", views.join_view, name="join"),
    path("leave/", views.leave_view, name="leave"),
    path("teachers/login/", views.LoginView.as_view(), name="login"),
    path("teachers/logout/", views.LogoutView.as_view(), name="logout"),
    path("teachers/signup/", views.signup_view, name="signup"),
    path("classes/", views.home_view, name="home"),
    path("classes/<str:code>/", views.dashboard_view, name="dashboard"),
    path("classes/<str:code>/pause/", views.pause_view, name="pause"),
]

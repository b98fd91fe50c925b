"""The playgrounds' routers, mounted under /api/playgrounds/ (peftlab/urls.py): each reads its
parameters and calls the math of simulations/. Where the math refuses a parameter it raises
ValueError with a message for the learner, and the API answers 400 with that message
(peftlab/api/lab.py); a router's own refusals raise the lab's kinds (peftlab/errors.py)."""

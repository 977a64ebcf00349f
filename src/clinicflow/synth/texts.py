"""Portal message wording in English and Spanish: what patients write and what the clinic answers.

`{med}`, `{test}` and `{amount}` are filled in per message. The urgent ones are there so triage
has something it must never auto-answer.
"""

from __future__ import annotations

PATIENT_TEXTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("appointment", "en"): (
        "Hi, I need to schedule a follow-up visit. Do you have anything next week, afternoons?",
        "Can I move my appointment to a later time? Something came up at work.",
        "I'd like to book my annual physical. Mornings work best for me.",
        "My son needs a sports physical before the season starts. What times are open?",
        "Is there any opening sooner than my current appointment?",
    ),
    ("appointment", "es"): (
        "Hola, necesito una cita de seguimiento. ¿Tienen algo la próxima semana por la tarde?",
        "¿Puedo cambiar mi cita para más tarde? Tengo trabajo ese día.",
        "Quisiera hacer una cita para mi examen físico anual. Prefiero en la mañana.",
        "Mi hija necesita una cita para sus vacunas. ¿Qué días tienen disponibles?",
    ),
    ("refill", "en"): (
        "I'm almost out of my {med}. Could you send a refill to my pharmacy?",
        "Please refill {med}, same dose as before. I have 3 pills left.",
        "The pharmacy says my {med} prescription expired. Can the doctor renew it?",
    ),
    ("refill", "es"): (
        "Ya casi no me queda {med}. ¿Me pueden mandar un resurtido a la farmacia?",
        "Necesito más {med}, la misma dosis de siempre. Me quedan pocas pastillas.",
    ),
    ("billing", "en"): (
        "I got a bill for ${amount} but I thought my insurance covered this visit. Can you check?",
        "I changed insurance this month. How do I update my card on file?",
        "Can I set up a payment plan for my balance of ${amount}?",
    ),
    ("billing", "es"): (
        "Me llegó una factura de ${amount} pero pensé que mi seguro lo cubría. ¿Pueden revisar?",
        "Cambié de seguro este mes. ¿Cómo actualizo mi tarjeta del seguro?",
    ),
    ("results", "en"): (
        "Are my {test} results back yet? I had the test last week.",
        "I saw my {test} results in the portal but I don't understand them. Is everything ok?",
        "Did the doctor review my {test}? Nobody called me.",
    ),
    ("results", "es"): (
        "¿Ya están los resultados de mi {test}? Me lo hice la semana pasada.",
        "Vi mis resultados de {test} en el portal pero no los entiendo. ¿Está todo bien?",
    ),
    ("symptom", "en"): (
        "I've had a sore throat and a low fever for three days. Should I come in?",
        "My rash is spreading even with the cream. What should I do?",
        "Since starting {med} I feel dizzy in the mornings. Is that normal?",
        "My knee still hurts when I climb stairs, two weeks after the visit.",
    ),
    ("symptom", "es"): (
        "Tengo dolor de garganta y fiebre desde hace tres días. ¿Debo ir a consulta?",
        "Me salió un sarpullido que no se quita con la crema.",
        "Desde que empecé a tomar {med} me siento mareado en las mañanas. ¿Es normal?",
    ),
}

URGENT_TEXTS: dict[str, tuple[str, ...]] = {
    "en": (
        "I've had chest pain since this morning and it is getting worse. What should I do?",
        "My husband's face is drooping on one side and his speech is slurred.",
        "I can't catch my breath even sitting down and my lips look blue.",
    ),
    "es": (
        "Tengo dolor en el pecho desde esta mañana y no se me quita.",
        "Me cuesta respirar desde anoche, incluso sentado.",
        "A mi esposo se le cayó un lado de la cara y no puede hablar bien.",
    ),
}

CLINIC_REPLIES: dict[tuple[str, str], str] = {
    ("appointment", "en"): "Thanks for reaching out. We have openings next week; please book "
    "in the portal or call the front desk.",
    ("appointment", "es"): "Gracias por escribirnos. Tenemos citas disponibles la próxima semana; "
    "puede reservar en el portal o llamar a la recepción.",
    ("refill", "en"): "Your refill has been sent to your pharmacy. Please allow 1-2 business days.",
    ("refill", "es"): "Enviamos su resurtido a la farmacia. Puede tardar de 1 a 2 días hábiles.",
    ("billing", "en"): "We passed your question to our billing team; they will contact you "
    "within 3 business days.",
    ("billing", "es"): "Pasamos su pregunta al equipo de facturación; le contactarán en un plazo "
    "de 3 días hábiles.",
    ("results", "en"): "The doctor has reviewed your results and they look stable. We will go "
    "over them at your next visit.",
    ("results", "es"): "El doctor revisó sus resultados y se ven estables. Los revisaremos en su "
    "próxima cita.",
    ("symptom", "en"): "Thank you for letting us know. Please schedule a visit this week so we "
    "can take a look. If it gets worse, call us right away.",
    ("symptom", "es"): "Gracias por avisarnos. Por favor haga una cita esta semana para revisarle. "
    "Si empeora, llámenos de inmediato.",
}

FOLLOW_UPS: dict[str, tuple[str, ...]] = {
    "en": ("Thank you!", "Thanks, that works for me.", "Got it, thank you for the quick answer."),
    "es": ("¡Muchas gracias!", "Gracias, así está bien.", "Perfecto, gracias por responder."),
}

MEDICATIONS: dict[str, tuple[str, ...]] = {
    "en": ("lisinopril", "metformin", "atorvastatin", "levothyroxine", "amlodipine",
           "albuterol inhaler", "sertraline", "omeprazole"),
    "es": ("metformina", "lisinopril", "atorvastatina", "levotiroxina", "amlodipino",
           "omeprazol"),
}  # fmt: skip

TESTS: dict[str, tuple[str, ...]] = {
    "en": ("blood work", "cholesterol", "A1c", "thyroid", "urine test"),
    "es": ("análisis de sangre", "colesterol", "A1c", "tiroides"),
}

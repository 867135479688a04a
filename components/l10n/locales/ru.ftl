## Answers of the API

signup-created = Почти готово: мы отправили ссылку для подтверждения на { $email }.
signup-created-instructions = Сообщите пользователю его PIN-код { $pin } и попросите сохранить PIN-код и парольную фразу в надёжном месте: вместе они подтверждают в чате, что аккаунт принадлежит ему. Попросите открыть письмо и перейти по ссылке в течение 24 часов, чтобы активировать аккаунт. Не повторяйте парольную фразу.
signup-concealed = Если адрес { $email } можно зарегистрировать, письмо со ссылкой и PIN-кодом уже отправлено.
signup-concealed-instructions = Попросите пользователя открыть письмо: в нём PIN-код и ссылка для активации аккаунта.
signup-verified = Адрес электронной почты подтверждён, аккаунт активен. Можно вернуться в чат.

## Errors

error-invalid-json = Тело запроса должно быть JSON-объектом.
error-payload-too-large = Тело запроса слишком велико.
error-unsupported-media-type = Тело запроса должно передаваться как application/json.
error-invalid-input = Поле «{ $field }» заполнено неверно: { $reason }
error-consent-required = Для регистрации необходимо согласие на обработку персональных данных.
instructions-consent-required = Расскажите пользователю о политике конфиденциальности и спросите, согласен ли он; передавайте consent: true, только если согласен.
error-email-already-registered = Этот адрес электронной почты уже зарегистрирован.
instructions-email-already-registered = Предложите пользователю восстановить доступ к аккаунту здесь: { $url }
error-invalid-token = Ссылка недействительна, уже использована или устарела.
instructions-invalid-token = Попросите ассистента в чате зарегистрировать вас ещё раз с тем же адресом: придёт новая ссылка.
error-throttled = На этот адрес отправлено слишком много писем. Повторите через { $seconds } с.
error-unavailable = Сервис временно недоступен. Повторите попытку позже.
error-api-key-required = Нужен действительный ключ API сервиса.
error-forbidden-origin = Запросы с другого сайта не принимаются.
error-not-found = По этому адресу ничего нет.
error-method-not-allowed = Этот метод здесь не поддерживается.
error-internal = Что-то пошло не так на нашей стороне. Повторите попытку позже.

## Reasons a field is not valid

invalid-missing = поле обязательно.
invalid-not-a-string = нужна строка.
invalid-not-a-boolean = нужно значение true или false.
invalid-unknown-field = такое поле не ожидается.
invalid-email-empty = значение пустое.
invalid-email-too-long = адрес не длиннее 254 символов.
invalid-email-format = это не адрес электронной почты.
invalid-locale = поддерживаются языки en и ru.
invalid-passphrase-too-short = парольная фраза не короче 15 символов.
invalid-passphrase-too-long = парольная фраза не длиннее 256 символов.
invalid-passphrase-control = парольная фраза не может содержать управляющие символы.
invalid-pin = PIN-код состоит из цифр.

## Pages

page-verify-title = Подтвердите адрес электронной почты
page-verify-intro = Нажмите кнопку, чтобы подтвердить адрес и активировать аккаунт.
page-verify-button = Подтвердить адрес
page-verify-working = Подтверждаем…
page-verify-missing-token = Страница открыта без токена. Откройте ссылку из письма ещё раз.
page-verify-failed = Не удалось связаться с сервером. Проверьте подключение и попробуйте снова.

## Emails

email-footer = Это письмо отправлено автоматически; ответы на него не читаются.

email-signup-verification-subject = Подтвердите адрес электронной почты
email-signup-verification-intro = Спасибо за регистрацию. Ваш PIN-код: { $pin }. Храните его вместе с парольной фразой: в чате они подтверждают, что аккаунт ваш.
email-signup-verification-action = Подтвердить адрес
email-signup-verification-validity = Ссылка действительна { $valid-hours } ч.
email-signup-verification-ignore = Если вы не регистрировались, просто проигнорируйте письмо: аккаунт не будет активирован и будет удалён.

email-signup-existing-subject = Кто-то пытался зарегистрироваться с вашим адресом
email-signup-existing-intro = Кто-то попросил создать аккаунт с этим адресом электронной почты, а аккаунт с ним уже есть.
email-signup-existing-action = Восстановить доступ к аккаунту
email-signup-existing-validity = Ссылка выше открывает редактирование профиля; срок её действия не ограничен.
email-signup-existing-ignore = Если это были не вы, проигнорируйте письмо: ничего не изменилось.

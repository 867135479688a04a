## Answers of the API

signup-created = Almost done: we sent a verification link to { $email }.
signup-created-instructions = Tell the user their PIN is { $pin } and ask them to keep the PIN and the passphrase somewhere safe: the PIN with the passphrase proves the account is theirs in the chat. Ask them to open the email and follow the link within 24 hours to activate the account. Do not repeat the passphrase.
signup-concealed = If { $email } can be registered, a verification link with the PIN is on its way.
signup-concealed-instructions = Ask the user to open the email: it contains the PIN and the link that activates the account.
signup-verified = Your email address is verified and your account is active. You can return to the chat.
profile-link-sent = We emailed a link to edit the profile to the account's address.
profile-link-sent-instructions = Ask the user to open the email and follow the link within { $minutes } minutes: the page shows their profile and lets them change the language and set a new passphrase. Never ask for the passphrase in the chat.
profile-link-concealed = If an account matches, an email with a link is on its way to its address.
profile-link-concealed-instructions = Ask the user to open the email and follow its link (a profile link is valid for { $minutes } minutes). If nothing arrives, check the address or PIN with them.
profile-request-sent = If an account has this address, a link to its profile is on its way. Check your mailbox.
profile-saved = Your profile is saved.
profile-saved-passphrase = Your profile is saved. From now on, use the new passphrase in the chat.
email-change-sent-current = We sent a code to your current address { $to }. Enter it below to confirm that the address is yours.
email-change-sent-new = We sent a code to { $to }. Enter it below to confirm the new address.
email-change-sent-new-concealed = If { $to } can be used for your account, a code is on its way to it. Enter it below to confirm the new address.
email-change-confirmed-current = Your current address is confirmed. Now enter the new address.
email-change-available = This address is available.
email-change-check-concealed = This address can be entered. If it can be used for your account, the code we send to it will confirm it.
email-change-done = Your email address is now { $email }. Emails and profile links go to it from now on.

auth-ok = The PIN and passphrase are correct.
auth-ok-instructions = The user owns PIN { $pin }: you may act for them now. Do not repeat or store the passphrase.

## Errors

error-invalid-json = The request body must be a JSON object.
error-payload-too-large = The request body is too large.
error-unsupported-media-type = The request body must be sent as application/json.
error-invalid-input = The field “{ $field }” is not valid: { $reason }
error-consent-required = Consent to the processing of personal data is required to sign up.
instructions-consent-required = Explain the privacy policy to the user and ask whether they agree; send consent: true only if they do.
error-email-already-registered = This email address already has an account.
instructions-email-already-registered = Offer the user to recover access to their account here: { $url }
error-invalid-token = This link is invalid, already used or expired.
instructions-invalid-token = Ask the assistant in the chat to sign you up again with the same email address: a new link will be sent.
instructions-invalid-profile-token = Ask the assistant in the chat for a new profile link, or request one on the profile page.
error-user-not-found = No account has this email address or PIN.
instructions-user-not-found = Check the email address or PIN with the user. If they have no account yet, offer to sign them up.
error-email-not-verified = The email address of this account is not verified yet.
instructions-email-not-verified = A new verification link was sent to the account's address. Ask the user to open it and confirm the address; after that they can ask for the profile link again.
error-account-blocked = This account is blocked.
instructions-account-blocked = The operator of the service blocked this account, so it cannot be changed. Tell the user to contact the operator.
error-save-failed = Your changes could not be saved; nothing was changed.
instructions-save-failed = Try again in a moment: the link still works.
error-throttled = Too many emails were sent to this address. Try again in { $seconds } seconds.
error-signups-busy = Too many sign-ups right now. Try again in { $seconds } seconds.
instructions-signups-busy = The service takes no new sign-ups for { $seconds } seconds. Tell the user to try again later; nothing was saved and no email was sent.
error-rate-limited = Too many requests. Try again in { $seconds } seconds.
instructions-rate-limited = Wait { $seconds } seconds before the next call and tell the user the service is busy; nothing was done.
error-unavailable = The service is temporarily unavailable. Please try again later.
error-api-key-required = A valid service API key is required.
error-authorization-required = Sign in is required: connect this chat to your gpt-user account (OAuth), or use the service API key.
error-invalid-access-token = The access token is not valid: it is unknown, expired or revoked. Sign in again.
error-oauth-client-invalid = This sign-in request names an application or a return address that gpt-user does not know.
instructions-oauth-client-invalid = Go back to your chat application and connect it again.
error-invalid-sign-in = The email address or the passphrase is not correct.
error-sign-in-code-invalid = The code is not correct. Attempts left: { $attempts }.
error-sign-in-code-expired = This code no longer works: it has expired, was used, or too many wrong codes were entered. Ask for a new code.
signup-verified-continue = Your email address is confirmed and your account is active. Continuing to the app that asked to use it…
oauth-code-sent = If an account has this address, a sign-in code is on its way. It is valid for { $minutes } minutes.
error-api-key-not-configured = GPT actions are closed: the operator has not configured a service API key.
error-forbidden-origin = Requests from another site are not allowed.
error-not-found = There is nothing at this address.
error-method-not-allowed = This method is not allowed here.
error-internal = Something went wrong on our side. Please try again later.
error-config-invalid = The service is misconfigured: the variable { $variable } must be { $accepted }.
instructions-config-invalid = This is not the user's fault and retrying will not help until the operator of the service fixes the variable.
config-accepts-range = an integer between { $min } and { $max }
config-accepts-flag = true or false
config-accepts-http-url = an http:// or https:// URL
config-accepts-socket-address = an IP address with a port, such as 127.0.0.1:2525
error-invalid-credentials = The PIN or the passphrase is not correct.
instructions-invalid-credentials = Ask the user to check the PIN and the passphrase and to type them again. Do not guess. If they forgot the passphrase, offer a profile link (action updateInit) to set a new one.
error-too-many-attempts = Too many wrong attempts for this PIN. Try again in { $seconds } seconds.
instructions-too-many-attempts = Wait { $seconds } seconds before checking this PIN again, and tell the user why. If they forgot the passphrase, offer a profile link (action updateInit) to set a new one.
error-pin-locked = This PIN is locked after too many wrong passphrases.
instructions-pin-locked = Tell the user to set a new passphrase through a profile link (action updateInit with their email address); that unlocks the PIN. The owner was notified by email.
instructions-auth-email-not-verified = The passphrase is right, but the account is not active yet: ask the user to open the verification email and confirm the address, then try again.
invalid-passphrase-checked = a passphrase is 1 to 4096 characters without control characters.
error-flow-not-found = There is no such email change in progress. It may have been replaced by a change started later, for example in another tab.
instructions-flow-not-found = Start the change again, or finish it in the tab where you started it last.
error-flow-expired = This email change has expired: a change must be finished within an hour of its start.
instructions-flow-expired = Start the change again.
error-wrong-step = This step does not fit the email change in progress: { $state ->
    [confirm_current] it is waiting for the code sent to your current address.
    [enter_new] it is waiting for the new address.
    [confirm_new] it is waiting for the code sent to the new address.
    [done] it is already finished.
    [dead] it was stopped after too many wrong codes.
   *[other] it is in the state “{ $state }”.
}
instructions-wrong-step = Start the change again, or finish it in the tab where you started it.
error-invalid-code = The code is not correct. Attempts left: { $attempts }.
instructions-invalid-code = Type the code from the latest email (a new code replaces the earlier ones). If no attempts are left, start the change again.
error-flow-dead = Too many wrong codes were entered, so this email change was stopped.
instructions-flow-dead = Start the change again to get a new code.
error-code-expired = The code has expired, or the time to confirm the new address is over.
instructions-code-expired = Ask for a new code. If the time to confirm the new address is over, start the change again.
error-too-many-codes = Too many codes were sent to this address for this change.
instructions-too-many-codes = Use the code from the latest email, or start the change again.
error-email-taken = Another account already uses this email address.
instructions-email-taken = Choose another address.
error-too-many-checks = Too many addresses were checked in this change.
instructions-too-many-checks = Send the code to the address you want to use, or start the change again.

## Reasons a field is not valid

invalid-missing = it is required.
invalid-not-a-string = it must be a string.
invalid-not-a-boolean = it must be true or false.
invalid-unknown-field = this field is not expected.
invalid-email-empty = it is empty.
invalid-email-too-long = an email address has at most 254 characters.
invalid-email-format = this is not an email address.
invalid-locale = supported languages are en and ru.
invalid-passphrase-too-short = a passphrase has at least 15 characters.
invalid-passphrase-too-long = a passphrase has at most 256 characters.
invalid-passphrase-control = a passphrase cannot contain control characters.
invalid-pin = a PIN is { $length } digits and does not start with 0.
invalid-email-or-pin-missing = give the email address or the PIN of the account.
invalid-nothing-to-save = give a new language or a new passphrase.
invalid-same-email = it is your current address.
invalid-code-format = a code is 6 digits.

## Pages

page-verify-title = Confirm your email address
page-verify-intro = Press the button to confirm this email address and activate your account.
page-verify-pin-intro = This link activates the account with the PIN
page-verify-pin-check = Check that it is the PIN your chat gave you. If it is not, do not press the button: someone signed up with your address after you. Ask your chat to sign you up again instead.
page-verify-button = Confirm my email
page-verify-working = Confirming…
page-verify-missing-token = This page was opened without its token. Open the link from the email again.
page-verify-failed = Could not reach the server. Check your connection and try again.

page-profile-title = Your profile
page-profile-intro = Check your details, then change the language or set a new passphrase.
page-profile-pin = PIN
page-profile-email = Email address
page-profile-verified = Email verified
page-profile-yes = yes
page-profile-no = no
page-profile-status = Account
page-profile-status-active = active
page-profile-status-pending = waiting for email verification
page-profile-status-blocked = blocked
page-profile-created = Created
page-profile-locale = Language of emails and pages
page-profile-locale-en = English
page-profile-locale-ru = Русский
page-profile-passphrase = New passphrase (leave empty to keep the current one)
page-profile-passphrase2 = New passphrase again
page-profile-passphrase-rule = A passphrase has { $min } to { $max } characters; several words are easy to remember and hard to guess.
page-profile-passphrase-short = The passphrase is too short: it needs at least { $min } characters.
page-profile-passphrase-long = The passphrase is too long: it may have at most { $max } characters.
page-profile-mismatch = The two passphrases differ. Type the same passphrase in both fields.
page-profile-save = Save
page-profile-loading = Loading your profile…
page-profile-saving = Saving…
page-profile-expired = This link is invalid, already used or expired. Ask your chat for a new profile link, or get one by email below.
page-profile-failed = Could not reach the server. Check your connection and try again; if this page was opened from an email, open the link from the email again.
page-profile-recovery-title = Get a link to your profile
page-profile-recovery-intro = Enter the email address of your account. If an account has this address, we will send a link to edit the profile there; the link is valid for { $minutes } minutes.
page-profile-recovery-email = Email address
page-profile-recovery-send = Send me a link
page-profile-recovery-sending = Sending…
page-email-change-title = Change your email address
page-email-change-intro = First confirm your current address with a code we email to it, then the new address with a second code.
page-email-change-start = Change email address
page-email-change-code = Code from the email
page-email-change-confirm = Confirm
page-email-change-resend = Send a new code
page-email-change-resend-in = You can ask for a new code in { $seconds } s.
page-email-change-new-email = New email address
page-email-change-request-new = Send code to new address
page-email-change-code-new = Code from the email sent to the new address
page-email-change-window = Time left to confirm the new address: { $time }
page-email-change-window-over = The time to confirm the new address is over. Start the change again.
page-email-change-working = Please wait…
page-email-change-failed = Could not reach the server. Check your connection and try again.

page-privacy-title = Privacy policy
page-privacy-version = Version { $version }.
page-privacy-collect = What we keep: your email address, a public PIN, your passphrase only as a one-way hash (Argon2id), your language, and when you agreed to this policy and to which version of it.
page-privacy-why = Why: to create your account, to prove in a chat that it is yours (PIN and passphrase), and to send you the links and codes you ask for. Nothing else, and we do not sell or share your data.
page-privacy-mail = Emails go through the mail server of the operator of this service. Links and codes are stored only as hashes and expire (a sign-up link after 24 hours).
page-privacy-retention = How long: an account that is not verified within 7 days is deleted with everything about it. A verified account is kept until you ask for it to be deleted.
page-privacy-rights = Your rights: you may see and change your data through the profile link we email you, and ask the operator to delete your account at any time.

page-authorize-title = Connect an app to your account
page-authorize-intro = { $client } asks to use your account. Sign in to answer; afterwards this page sends you back to { $host }.
page-authorize-email = Email address
page-authorize-passphrase = Passphrase
page-authorize-sign-in = Sign in
page-authorize-signing-in = Signing in…
page-authorize-consent-title = Allow access?
page-authorize-consent = Allow { $client } to use your account as { $email }?
page-authorize-consent-scope = It will see your email address, PIN and account status, and can have a link to your profile emailed to you. It never learns your passphrase.
page-authorize-allow = Allow
page-authorize-deny = Deny
page-authorize-working = Please wait…
page-authorize-redirecting = Sending you back to the app…
page-authorize-failed = Could not reach the server. Check your connection and try again.
page-authorize-code = Code from the email
page-authorize-send-code = Email me a code instead
page-authorize-sending = Sending the code…
page-authorize-need-email = Type your email address first: the code goes there.
page-authorize-new-account = Create an account
page-authorize-sign-up-title = Create an account
page-authorize-new-passphrase = Passphrase ({ $min } to { $max } characters; a few words are easy to remember)
page-authorize-new-passphrase2 = The passphrase again
page-authorize-consent-data = I agree to the processing of my email address for this account, as described in the privacy policy.
page-authorize-privacy = Privacy policy
page-authorize-create = Create the account
page-authorize-have-account = I already have an account
page-authorize-mismatch = The two passphrases differ.
page-authorize-error-title = This request cannot be completed
page-authorize-unknown-client = The app that sent you here is not registered with this service, or its registration is no longer valid.
page-authorize-bad-redirect = The app that sent you here asked to be answered at an address it did not register. For your safety, this page does not send you there.
page-authorize-bad-request = The request that opened this page is incomplete or malformed.
page-authorize-go-back = Go back to your chat app and connect it again. If this keeps happening, remove the connection there and add it anew.

## Emails

email-footer = This message was sent automatically; replies are not read.

email-signup-verification-subject = Confirm your email address
email-signup-verification-intro = Thank you for signing up. Your PIN is { $pin }. Keep it together with your passphrase: in the chat they prove the account is yours. If your chat gave you another PIN, do not follow the link: someone signed up with your address after you.
email-signup-verification-action = Confirm my email
email-signup-verification-validity = The link is valid for { $valid-hours } hours.
email-signup-verification-ignore = If you did not sign up, ignore this message: the account will not be activated and will be deleted.

email-signup-existing-subject = Someone tried to sign up with your address
email-signup-existing-intro = Someone asked to create an account with this email address, which already has one.
email-signup-existing-action = Recover access to my account
email-signup-existing-validity = The link above starts the profile edit; it does not expire.
email-signup-existing-ignore = If it was not you, ignore this message: nothing has changed.

email-profile-link-subject = Your profile link
email-profile-link-intro = You asked for a link to your profile. It opens a page where you can see your account and change the language or set a new passphrase.
email-profile-link-action = Edit my profile
email-profile-link-validity = The link is valid for { $valid-minutes } minutes and works once.
email-profile-link-ignore = If you did not ask for it, ignore this message: nothing changes.

email-passphrase-changed-subject = Your passphrase was changed
email-passphrase-changed-intro = The passphrase of your account was just changed on the profile page. From now on, the chat accepts only the new one.
email-passphrase-changed-action = Get a profile link
email-passphrase-changed-validity = The link above opens the page where you can ask for a profile link; it does not expire.
email-passphrase-changed-ignore = If it was you, there is nothing to do. If it was not you, get a profile link now and set a new passphrase.

email-pin-locked-subject = Your PIN was locked
email-pin-locked-intro = Someone typed a wrong passphrase for your PIN { $pin } too many times, so the chat no longer accepts it. To unlock it, set a new passphrase on your profile page.
email-pin-locked-action = Get a profile link
email-pin-locked-validity = The link above opens the page where you can ask for a profile link; it does not expire.
email-pin-locked-ignore = If it was you, set a new passphrase to go on. If it was not you, your account is safe: nobody got in, and a new passphrase ends the lock.

email-email-change-current-subject = Code to change your email address
email-email-change-current-intro = Someone started to change the email address of your account on its profile page. If it was you, enter this code on the page to confirm that this address is yours:
email-email-change-current-validity = The code is valid for { $valid-minutes } minutes. Do not tell it to anyone, not even in a chat.
email-email-change-current-ignore = If it was not you, ignore this message: someone with access to your profile link tried to change your address. Without this code nothing changes, and your address stays.

email-oauth-sign-in-code-subject = Your sign-in code
email-oauth-sign-in-code-intro = Someone asked to sign in to your account to connect a chat app. If it was you, enter this code on the sign-in page:
email-oauth-sign-in-code-validity = The code is valid for { $valid-minutes } minutes. Do not tell it to anyone, not even in a chat.
email-oauth-sign-in-code-ignore = If it was not you, ignore this message: without this code nobody can sign in, and nothing changes.

email-email-change-new-subject = Confirm your new email address
email-email-change-new-intro = You asked to use this address for your account. Enter this code on the profile page to confirm it:
email-email-change-new-validity = The code is valid for { $valid-minutes } minutes. Do not tell it to anyone, not even in a chat.
email-email-change-new-ignore = If you did not ask for it, ignore this message: someone tried to use this address for an account. Without this code it will not be linked to any account.

email-email-change-taken-subject = Someone tried to use your address for another account
email-email-change-taken-intro = On the profile page of another account, someone asked to change its email address to this one. This address already belongs to your account, so it was not linked to the other one and no code was sent.
email-email-change-taken-action = Open my profile page
email-email-change-taken-validity = Your account and its address stay as they are; there is nothing to confirm. The link above opens the page where you can ask for a profile link; it does not expire.
email-email-change-taken-ignore = If it was you, use another address for the other account. If it was not you, ignore this message: nothing has changed.

email-email-changed-subject = Your email address was changed
email-email-changed-intro = The email address of your account was changed to { $new-email }. This address no longer belongs to the account: emails and profile links now go only to the new one, and every earlier profile link has stopped working.
email-email-changed-action = Open the profile page
email-email-changed-validity = The link above opens the page where you can ask for a profile link; it does not expire, but the link it sends goes to the new address.
email-email-changed-ignore = If it was not you, contact the operator of the service at once. The change needed a code sent to this address, so someone may be able to read your mailbox: change its password too. Because this address no longer owns the account, the profile page cannot send you a link here any more; only the operator can give the account back to this address.

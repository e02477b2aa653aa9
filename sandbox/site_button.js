// The sandbox's stand-in for amoCRM's site chat button, gso.amocrm.ru/js/button.js (amocrm-api.md §6).
// The embed snippet on the page creates window.amo_social_button (setMeta queues into .params) and the
// command queue window.amoSocialButton (calls queued in .q); this file takes both over, as button.js does:
//   amoSocialButton('onButtonClick', fn) -> fn(service, link) when an icon is clicked
//   amoSocialButton('onChatShow' | 'onChatHide' | 'onChatReady', fn), ('runChatShow' | 'runChatHide')
// The widget offers the online chat and two messengers. A messenger icon "opens the app": here a panel
// where the visitor writes, after which the sandbox makes the chat as amoCRM would for a Telegram or
// WhatsApp message — a contact, a lead WITHOUT the site's setMeta fields, and an open talk.
// The online chat's lead gets the fields handed by setMeta. Service names and links are guesses: only
// 'livechat' was seen in public code.
(function (w, d) {
  var SERVICES = [
    {service: 'livechat', label: 'Онлайн-чат', origin: 'onlinechat', link: null, color: '#2d7ff9'},
    {service: 'telegram', label: 'Telegram', origin: 'telegram', link: 'https://t.me/sandbox_shop_bot', color: '#229ed9'},
    {service: 'whatsapp', label: 'WhatsApp', origin: 'waba', link: 'https://wa.me/79990000000', color: '#25d366'}
  ];
  var button = w.amo_social_button = w.amo_social_button || {id: 'sandbox', hash: 'sandbox', locale: 'ru', inline: false};
  var pending = button.params || [], queued = (w.amoSocialButton && w.amoSocialButton.q) || [];
  var callbacks = {}, meta = {};

  function merge(p) {
    for (var k in p) if (Object.prototype.hasOwnProperty.call(p, k)) meta[k] = p[k];
  }
  button.params = [];
  button.setMeta = function (p) {
    if (p && typeof p === 'object') { merge(p); button.params.push(p); }
  };
  for (var i = 0; i < pending.length; i++) button.setMeta(pending[i]);

  function fire(name) {
    var args = Array.prototype.slice.call(arguments, 1), fns = callbacks[name] || [];
    for (var i = 0; i < fns.length; i++) {
      try { fns[i].apply(null, args); } catch (e) { setTimeout(function () { throw e; }); }
    }
  }
  function command(name, fn) {
    if (typeof fn === 'function') (callbacks[name] = callbacks[name] || []).push(fn);
    else if (name === 'runChatShow') open(SERVICES[0]);
    else if (name === 'runChatHide') close();
  }
  w.amoSocialButton = command;
  for (var j = 0; j < queued.length; j++) command.apply(null, queued[j]);

  var root = d.createElement('div'), panel = d.createElement('div'), list = d.createElement('div');
  root.id = 'amo-livechat';
  root.setAttribute('style', 'position:fixed;right:20px;bottom:20px;font:14px Arial,sans-serif;z-index:99999;text-align:right');
  list.setAttribute('style', 'display:none;margin-bottom:8px');
  panel.setAttribute('style', 'display:none;width:280px;background:#fff;border:1px solid #c5cfd9;border-radius:8px;' +
    'padding:12px;margin-bottom:8px;text-align:left;box-shadow:0 4px 16px rgba(0,0,0,.15)');
  var toggle = d.createElement('button');
  toggle.type = 'button';
  toggle.id = 'amo-button-toggle';
  toggle.textContent = 'Написать нам';
  toggle.setAttribute('style', 'background:#2d7ff9;color:#fff;border:0;border-radius:20px;padding:10px 18px;cursor:pointer');
  toggle.onclick = function () { list.style.display = list.style.display === 'none' ? 'block' : 'none'; };
  SERVICES.forEach(function (s) {
    var icon = d.createElement('button');
    icon.type = 'button';
    icon.className = 'amo-button-icon';
    icon.setAttribute('data-service', s.service);
    icon.textContent = s.label;
    icon.setAttribute('style', 'display:block;margin:4px 0 4px auto;background:' + s.color +
      ';color:#fff;border:0;border-radius:16px;padding:7px 14px;cursor:pointer');
    icon.onclick = function () {
      fire('onButtonClick', s.service, s.link);
      open(s);
    };
    list.appendChild(icon);
  });
  root.appendChild(panel);
  root.appendChild(list);
  root.appendChild(toggle);

  function close() {
    panel.style.display = 'none';
    fire('onChatHide');
  }
  function open(s) {
    list.style.display = 'none';
    panel.innerHTML = '';
    var title = d.createElement('p'), name = d.createElement('input'), text = d.createElement('input');
    var send = d.createElement('button'), status = d.createElement('p');
    title.textContent = s.link ? 'Вы в приложении ' + s.label + ' (' + s.link + '). Напишите компании:' : 'Онлайн-чат на сайте';
    title.setAttribute('style', 'margin:0 0 8px;font-weight:bold');
    name.placeholder = 'Ваше имя';
    name.value = 'Посетитель сайта';
    name.className = 'amo-chat-name';
    text.placeholder = 'Сообщение';
    text.value = 'Здравствуйте! Есть ли диван в наличии?';
    text.className = 'amo-chat-text';
    [name, text].forEach(function (el) { el.setAttribute('style', 'display:block;width:100%;box-sizing:border-box;margin:4px 0;padding:5px'); });
    send.type = 'button';
    send.className = 'amo-chat-send';
    send.textContent = 'Отправить';
    send.setAttribute('style', 'background:' + s.color + ';color:#fff;border:0;border-radius:4px;padding:6px 12px;cursor:pointer');
    status.className = 'amo-chat-status';
    status.setAttribute('style', 'margin:8px 0 0;color:#5b6b7b;font-size:12px');
    send.onclick = function () {
      send.disabled = true;
      start(s, name.value, status);
    };
    panel.appendChild(title); panel.appendChild(name); panel.appendChild(text); panel.appendChild(send); panel.appendChild(status);
    panel.style.display = 'block';
    if (!s.link) fire('onChatShow');
  }
  // The first message makes the chat in amoCRM: a messenger's lead has none of the site's setMeta fields.
  function start(s, visitorName, status) {
    var lead = {name: 'Заявка: ' + s.label};
    if (!s.link && meta.lead && meta.lead.custom_fields) lead.custom_fields = meta.lead.custom_fields;
    var contact = {name: visitorName || 'Посетитель сайта'};
    if (!s.link && meta.contact && meta.contact.custom_fields) contact.custom_fields = meta.contact.custom_fields;
    var xhr = new XMLHttpRequest();
    xhr.open('POST', '/_sandbox/chats');
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.onload = function () {
      var talk = null;
      try { talk = JSON.parse(xhr.responseText).talk_id; } catch (e) {}
      status.setAttribute('data-talk-id', talk || '');
      status.textContent = talk ? 'Беседа ' + talk + ' создана в amoCRM (' + s.origin + '). Закройте её на странице песочницы.'
        : 'Ошибка: ' + xhr.status;
    };
    xhr.send(JSON.stringify({contact: contact, lead: lead, origin: s.origin}));
  }

  function mount() { d.body.appendChild(root); fire('onChatReady'); }
  if (d.body) mount(); else d.addEventListener('DOMContentLoaded', mount);
})(window, document);

// A stand-in for amoCRM's site chat button ("кнопка на сайт", https://www.amocrm.ru/developers/content/web_sdk/crm_plugin). Like amoCRM's own
// snippet it creates window.amo_social_button (Kommo: window.crm_plugin) whose setMeta(p) queues p
// into .params until button.js arrives; here it also records every call for the test to read, and
// "Написать в чат" hands the metadata to the test, which opens the chat in the amoCRM sandbox.
// The snippet also creates the command queue (amoSocialButton, Kommo crmPlugin) where a site
// registers callbacks such as 'onButtonClick' and 'onChatShow'; __fire plays amoCRM firing one.
(function (w) {
  var QUEUES = {amo_social_button: 'amoSocialButton', crm_plugin: 'crmPlugin'}, callbacks = {};
  w.__meta = [];
  w.__fire = function (command) {
    var args = Array.prototype.slice.call(arguments, 1), fns = callbacks[command] || [];
    for (var i = 0; i < fns.length; i++) fns[i].apply(null, args);
    return fns.length;
  };
  w.__installButton = function (name) {
    w.__buttonAt = performance.now();
    w[QUEUES[name]] = function (command, fn) {
      if (typeof fn === 'function') (callbacks[command] = callbacks[command] || []).push(fn);
    };
    w[name] = {
      id: 'stand-in', hash: 'stand-in', locale: 'ru', inline: false, params: [],
      setMeta: function (p) {
        this.params.push(p);
        w.__meta.push({at: performance.now(), button: name, meta: JSON.parse(JSON.stringify(p))});
      }
    };
  };
  // What amoCRM would write into the custom field: the last value handed for it.
  w.__fieldValue = function (entity, fieldId) {
    for (var i = w.__meta.length - 1; i >= 0; i--) {
      var part = w.__meta[i].meta[entity], fields = (part && part.custom_fields) || [];
      for (var j = 0; j < fields.length; j++) if (fields[j].id === fieldId) return fields[j].values[0].value;
    }
    return null;
  };
  w.__startChat = function () {
    var last = w.__meta[w.__meta.length - 1];
    return w.__amoStartChat(JSON.stringify(last ? last.meta : {}));
  };
})(window);

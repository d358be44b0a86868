// The replay page (/r/ROOM after the end) and the clip page (/c/CLIP): clicking a speaker
// in the timeline seeks the player to where they start. No inline script (strict CSP).
(function () {
  "use strict";
  var player = document.getElementById("player");
  var timeline = document.getElementById("timeline");
  if (!player || !timeline) return;
  timeline.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button[data-start-ms]") : null;
    if (!button) return;
    var ms = parseInt(button.getAttribute("data-start-ms"), 10);
    if (!isFinite(ms) || ms < 0) return;
    player.currentTime = ms / 1000;
    var played = player.play();
    if (played && played.catch) played.catch(function () {});
  });
  // Highlight the speaker whose stretch is playing.
  var buttons = timeline.querySelectorAll("button[data-start-ms]");
  player.addEventListener("timeupdate", function () {
    var now = player.currentTime * 1000;
    var current = null;
    for (var i = 0; i < buttons.length; i++) {
      if (parseInt(buttons[i].getAttribute("data-start-ms"), 10) <= now) current = buttons[i];
    }
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].classList.toggle("playing", buttons[j] === current);
    }
  });
})();
